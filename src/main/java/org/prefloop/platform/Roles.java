package org.prefloop.platform;

import jakarta.inject.Singleton;
import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.core.Response;
import org.jboss.resteasy.reactive.server.ServerRequestFilter;

import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The roles this process plays ({@code prefloop.roles}: web, ingest, worker, serve). A process
 * without {@code web} answers no /api request and serves no page, one without {@code serve} no /v1 request, so that
 * each Kubernetes Deployment exposes exactly its role (the /api endpoints that generate are the serve role's); health and metrics stay on everywhere.
 * (The ingest consumer is switched by {@link KafkaConfigSourceFactory}.)
 */
@Singleton
public class Roles {
    private final Set<String> enabled;

    Roles(Settings settings) {
        this.enabled = settings.roles().stream().map(String::trim).collect(Collectors.toUnmodifiableSet());
    }

    public boolean has(String role) {
        return enabled.contains(role);
    }

    /**
     * The /api endpoints that generate (the next round, held-out evaluations) need the model, so
     * they belong to the serve role; a web-only process forwards them there (serve.ServeProxy).
     */
    static boolean generates(String path) {
        return path.equals("/api/rounds") || path.startsWith("/api/rounds/") || path.equals("/api/evaluations") || path.startsWith("/api/evaluations/");
    }

    @ServerRequestFilter(preMatching = true)
    public Optional<Response> onlyMyRoles(ContainerRequestContext request) {
        String path = request.getUriInfo().getPath();
        String needed = path.startsWith("/v1/") || path.equals("/v1") || generates(path) ? "serve" : path.startsWith("/q/") ? null : "web";
        if (needed == null || has(needed)) return Optional.empty();
        return Optional.of(ProblemMappers.response(404, null, "this process does not play the '" + needed + "' role (prefloop.roles=" + enabled + ")"));
    }
}
