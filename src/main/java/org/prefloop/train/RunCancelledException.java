package org.prefloop.train;

/** Thrown out of a run when its cancellation was requested; the latest checkpoint stays on disk. */
public final class RunCancelledException extends RuntimeException {
    public RunCancelledException(String stage, int step) {
        super("cancelled in " + stage + " at step " + step);
    }
}
