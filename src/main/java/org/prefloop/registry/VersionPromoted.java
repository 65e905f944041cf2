package org.prefloop.registry;

/**
 * Fired (synchronously, inside the promotion's transaction) when a version is about to be
 * promoted. An observer that throws stops the promotion: the transaction rolls back and the
 * previously promoted version stays promoted. The serving backend (serve.ServingBackend) loads
 * the version's adapter here, so a version is never promoted that the backend cannot serve.
 */
public record VersionPromoted(ModelVersion version, ModelVersion previous) {
}
