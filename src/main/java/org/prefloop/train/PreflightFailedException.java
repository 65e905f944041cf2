package org.prefloop.train;

/** A run refused before it started, with the report that says why. */
public final class PreflightFailedException extends IllegalArgumentException {
    private final PreflightReport report;

    public PreflightFailedException(PreflightReport report) {
        super("pre-flight checks failed: " + report.findings().stream()
                .filter(f -> f.level() == PreflightReport.Level.ERROR).map(f -> f.check() + ": " + f.message()).toList());
        this.report = report;
    }

    public PreflightReport report() {
        return report;
    }
}
