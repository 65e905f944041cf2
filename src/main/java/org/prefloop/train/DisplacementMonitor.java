package org.prefloop.train;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Watches a DPO stage for likelihood displacement: the chosen answers of the evaluation split
 * becoming less likely than under the reference, per token or at their end token (an answer that
 * no longer stops). Reward accuracy and margins keep rising while this happens, so they cannot
 * show it; held-out quality falls. Past {@code displacement_threshold} nats the monitor warns,
 * and with {@code stop_on_displacement} it ends the stage at that evaluation.
 */
final class DisplacementMonitor {
    private final DpoTrainer.Likelihood reference;
    private final double threshold;
    private double worstChosen, worstEnd;
    private int firstExceededAt = -1;

    DisplacementMonitor(DpoTrainer.Likelihood reference, double threshold) {
        this.reference = reference;
        this.threshold = threshold;
    }

    /** The evaluation metrics this adds: the likelihood now and its change since the reference (negative = fell). */
    Map<String, Double> metrics(DpoTrainer.Likelihood now) {
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("eval_logps/chosen_per_token", now.chosenPerToken());
        m.put("eval_logps/chosen_end", now.endOfAnswer());
        m.put("eval_displacement/chosen_per_token", now.chosenPerToken() - reference.chosenPerToken());
        m.put("eval_displacement/chosen_end", now.endOfAnswer() - reference.endOfAnswer());
        return m;
    }

    /** Records an evaluation; returns a warning when either fall passes the threshold, else null. */
    String check(int step, Map<String, Double> eval) {
        double chosen = -eval.get("eval_displacement/chosen_per_token");
        double end = -eval.get("eval_displacement/chosen_end");
        worstChosen = Math.max(worstChosen, chosen);
        worstEnd = Math.max(worstEnd, end);
        if (chosen <= threshold && end <= threshold) return null;
        if (firstExceededAt < 0) firstExceededAt = step;
        return String.format(java.util.Locale.ROOT,
                "likelihood displacement at step %d: the held-out chosen answers lost %.3f nats per token and %.3f at their end token "
                        + "against the reference (threshold %.3f); held-out answers are likely worse than before DPO. "
                        + "Add an sft term (loss_type: [sigmoid, sft]) or lower the learning rate", step, chosen, end, threshold);
    }

    boolean exceeded() {
        return firstExceededAt >= 0;
    }

    /** What the stage summary records. */
    Map<String, Object> summary() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("threshold", threshold);
        m.put("reference_logps/chosen_per_token", reference.chosenPerToken());
        m.put("reference_logps/chosen_end", reference.endOfAnswer());
        m.put("largest_fall/chosen_per_token", worstChosen);
        m.put("largest_fall/chosen_end", worstEnd);
        m.put("exceeded", exceeded());
        if (exceeded()) m.put("first_exceeded_at_step", firstExceededAt);
        return m;
    }
}
