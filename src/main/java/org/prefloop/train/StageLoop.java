package org.prefloop.train;

import ai.djl.engine.Engine;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.BiFunction;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * The loop every stage shares: epochs over a seeded shuffle, replay examples mixed into each
 * batch, the learning-rate schedule, metrics to JSON Lines, evaluation every eval_steps with early
 * stopping, checkpoints every save_steps, resumption from the latest checkpoint, cancellation.
 * The data order of epoch e and the dropout masks of step s derive from the seed alone, so a
 * resumed run sees exactly the batches the killed one would have seen.
 */
abstract class StageLoop<T> {
    private final String name;
    private final TrainingArguments s;
    private final long seed;
    private final Path stageDir;
    private final Path checkpoints;
    private final RunListener listener;
    private final BooleanSupplier cancelled;

    StageLoop(String name, TrainingArguments s, long seed, Path out, RunListener listener, BooleanSupplier cancelled) {
        this.name = name;
        this.s = s;
        this.seed = seed;
        this.stageDir = out.resolve(name);
        this.checkpoints = out.resolve("checkpoints");
        this.listener = listener;
        this.cancelled = cancelled;
    }

    Map<String, Object> loop(List<T> train, List<T> replay, int replayPerBatch, Trainable trainable, AdamW optimizer,
                             BiFunction<List<T>, Double, Map<String, Double>> step, Supplier<Map<String, Double>> evaluate) throws IOException {
        long start = System.nanoTime();
        // TRL's meaning: per_device_train_batch_size is the micro-batch, and an optimizer step sees
        // per_device_train_batch_size x gradient_accumulation_steps examples (replay included).
        int stepBatch = s.perDeviceTrainBatchSize() * s.gradientAccumulationSteps();
        int perBatch = Math.max(1, stepBatch - (replay.isEmpty() ? 0 : replayPerBatch));
        int stepsPerEpoch = (train.size() + perBatch - 1) / perBatch;
        int total = s.maxSteps() > 0 ? s.maxSteps() : (int) Math.ceil(s.numTrainEpochs() * stepsPerEpoch);
        LrSchedule schedule = LrSchedule.of(s, total);
        Files.createDirectories(stageDir);
        Path metricsFile = stageDir.resolve("metrics.jsonl");
        Checkpoint.State state = new Checkpoint.State(name, 0, 0, 0, Double.POSITIVE_INFINITY, 0);
        var latest = Checkpoint.latest(checkpoints, name);
        if (latest.isPresent()) {
            state = Checkpoint.restore(latest.get(), trainable, optimizer);
            keepMetricsUpTo(metricsFile, state.step());
            listener.message(name + ": resuming from " + latest.get().getFileName());
        } else {
            Files.deleteIfExists(metricsFile);
        }
        listener.stageStarted(name, total);
        int stepNo = state.step(), epoch = state.epoch(), batch = state.batch(), patience = state.evalsWithoutImprovement();
        double best = state.bestEvalLoss();
        int[] order = order(train.size(), epoch);
        Map<String, Double> last = Map.of();
        Map<String, Double> lastEval = null;
        boolean stoppedEarly = false;
        long tokens = 0;
        while (stepNo < total) {
            if (cancelled.getAsBoolean()) throw new RunCancelledException(name, stepNo);
            if (batch >= stepsPerEpoch) {
                epoch++;
                batch = 0;
                order = order(train.size(), epoch);
            }
            List<T> items = new ArrayList<>(stepBatch);
            for (int i = batch * perBatch; i < Math.min(train.size(), (batch + 1) * perBatch); i++) items.add(train.get(order[i]));
            if (!replay.isEmpty()) {
                Random r = new Random(seed * 31 + stepNo);
                for (int k = 0; k < replayPerBatch; k++) items.add(replay.get(r.nextInt(replay.size())));
            }
            Engine.getInstance().setRandomSeed((int) (seed * 1_000_003 + stepNo));
            Map<String, Double> m = new LinkedHashMap<>(step.apply(items, schedule.at(stepNo)));
            stepNo++;
            batch++;
            tokens += m.getOrDefault("num_tokens", 0.0).longValue();
            m.put("epoch", epoch + (double) batch / stepsPerEpoch);
            last = m;
            if (stepNo % Math.max(1, s.loggingSteps()) == 0 || stepNo == total) {
                append(metricsFile, stepNo, m);
                listener.step(name, stepNo, total, m);
            }
            boolean evalNow = evaluate != null && s.evalSteps() > 0 && stepNo % s.evalSteps() == 0;
            if (evalNow) {
                lastEval = evaluate.get();
                append(metricsFile, stepNo, lastEval);
                listener.evaluated(name, stepNo, lastEval);
                double loss = lastEval.get("eval_loss");
                if (loss < best - 1e-6) {
                    best = loss;
                    patience = 0;
                } else {
                    patience++;
                }
                String stop = afterEvaluation(stepNo, lastEval);
                if (stop != null) {
                    stoppedEarly = true;
                    listener.message(name + ": " + stop + "; stopping at step " + stepNo);
                    break;
                }
            }
            if (s.saveSteps() > 0 && stepNo % s.saveSteps() == 0 && stepNo < total) {
                Checkpoint.save(checkpoints, new Checkpoint.State(name, stepNo, epoch, batch, best, patience), trainable, optimizer);
                listener.checkpointed(name, stepNo);
            }
            if (s.earlyStoppingPatience() > 0 && patience >= s.earlyStoppingPatience()) {
                stoppedEarly = true;
                listener.message(name + ": eval_loss did not improve for " + patience + " evaluations; stopping early at step " + stepNo);
                break;
            }
        }
        if (evaluate != null && (lastEval == null || stepNo % Math.max(1, s.evalSteps()) != 0 || s.evalSteps() == 0)) {
            lastEval = evaluate.get();
            append(metricsFile, stepNo, lastEval);
            listener.evaluated(name, stepNo, lastEval);
            best = Math.min(best, lastEval.get("eval_loss"));
            afterEvaluation(stepNo, lastEval);
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("stage", name);
        summary.put("steps", stepNo);
        summary.put("planned_steps", total);
        summary.put("examples", train.size());
        summary.put("epochs", epoch + (double) batch / Math.max(1, stepsPerEpoch));
        summary.put("final", last);
        if (lastEval != null) summary.put("final_eval", lastEval);
        if (Double.isFinite(best)) summary.put("best_eval_loss", best);
        summary.put("stopped_early", stoppedEarly);
        summary.put("seconds_this_session", (System.nanoTime() - start) / 1e9);
        summary.put("metrics", stageDir.resolve("metrics.jsonl").toString());
        return summary;
    }

    /** Looks at an evaluation; a reason to stop the stage now, or null to go on. */
    String afterEvaluation(int step, Map<String, Double> eval) {
        return null;
    }

    /** The example order of an epoch: a shuffle seeded by the run's seed and the epoch number. */
    private int[] order(int n, int epoch) {
        List<Integer> idx = new ArrayList<>(n);
        for (int i = 0; i < n; i++) idx.add(i);
        java.util.Collections.shuffle(idx, new Random(seed + 7919L * (epoch + 1)));
        return idx.stream().mapToInt(Integer::intValue).toArray();
    }

    private static void append(Path file, int step, Map<String, Double> m) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("step", step);
        line.putAll(m);
        try {
            Files.writeString(file, AlignmentRun.JSON.writer().without(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT)
                    .writeValueAsString(line) + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** After a resume, the metrics file says what the checkpoint saw, no more: the curve continues from there. */
    private static void keepMetricsUpTo(Path file, int step) throws IOException {
        if (!Files.exists(file)) return;
        List<String> kept = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            if (AlignmentRun.JSON.readTree(line).get("step").asInt() <= step) kept.add(line);
        }
        Files.write(file, kept);
    }
}
