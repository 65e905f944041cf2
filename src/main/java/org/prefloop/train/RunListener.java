package org.prefloop.train;

import java.util.Map;

/** What a run reports as it goes: the CLI draws a progress line from it, the worker publishes it to Kafka. */
public interface RunListener {
    default void stageStarted(String stage, int totalSteps) {
    }

    /** Training metrics of one logged step, under TRL's names. */
    default void step(String stage, int step, int totalSteps, Map<String, Double> metrics) {
    }

    /** Validation metrics ({@code eval_loss}, ...), at each eval interval and at the end of a stage. */
    default void evaluated(String stage, int step, Map<String, Double> metrics) {
    }

    default void checkpointed(String stage, int step) {
    }

    default void message(String text) {
    }

    RunListener NONE = new RunListener() {
    };
}
