package org.prefloop.runs;

import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.Map;

/**
 * What travels on {@code training-events} (keyed by run id) and out of
 * {@code GET /api/runs/{id}/events}: metrics of a step or an evaluation, a checkpoint, a stage
 * starting, or a change of status.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record RunEvent(long runId, String type, String stage, Integer step, Integer totalSteps, Map<String, Double> metrics,
                       String status, String message) {
    public static final String METRICS = "metrics";
    public static final String STAGE = "stage";
    public static final String CHECKPOINT = "checkpoint";
    public static final String STATUS = "status";
    public static final String MESSAGE = "message";

    static RunEvent status(long runId, String status, String message) {
        return new RunEvent(runId, STATUS, null, null, null, null, status, message);
    }
}
