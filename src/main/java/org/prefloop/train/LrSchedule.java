package org.prefloop.train;

/**
 * The learning rate at each optimizer step as transformers computes it: linear warmup from 0,
 * then {@code cosine} (half a cosine to 0), {@code linear} (straight to 0) or {@code constant}.
 */
public record LrSchedule(String type, double peak, int warmupSteps, int totalSteps) {

    public static void checkType(String type) {
        if (!type.equals("cosine") && !type.equals("linear") && !type.equals("constant") && !type.equals("constant_with_warmup")) {
            throw new IllegalArgumentException("lr_scheduler_type must be cosine, linear, constant or constant_with_warmup; got '" + type + "'");
        }
    }

    public static LrSchedule of(TrainingArguments s, int totalSteps) {
        int warmup = s.warmupSteps() > 0 ? s.warmupSteps() : (int) Math.ceil(s.warmupRatio() * totalSteps);
        return new LrSchedule(s.lrSchedulerType(), s.learningRate(), warmup, totalSteps);
    }

    /** The rate for the step about to be taken, {@code step} counted from 0. */
    public double at(int step) {
        if (step < warmupSteps) return peak * step / Math.max(1, warmupSteps);
        if (type.startsWith("constant")) return peak;
        double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
        return switch (type) {
            case "linear" -> peak * Math.max(0, 1 - progress);
            default -> peak * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
        };
    }
}
