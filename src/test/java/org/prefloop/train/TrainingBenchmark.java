package org.prefloop.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.BenchCheckpoint;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ModelConfig;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Training speed on a model of realistic shape (SmolLM2-135M's configuration, random fp32
 * weights): tokens/s of a LoRA SFT step and of a LoRA DPO step, and model FLOPs utilisation
 * against the fp32 matmul rate of the same engine measured in the same run. Not a test; run with
 * {@code ./mvnw -B -q -Pbench -DskipNpm package -DskipTests -Dbench.main=org.prefloop.train.TrainingBenchmark}.
 *
 * <p>FLOPs counted per step (N = parameters that multiply, i.e. every weight matrix including the
 * tied output projection; T = tokens; A = attention's QK and AV products, 4·T_seq²·d per layer and
 * sequence): a LoRA SFT step is a forward pass (2NT + A) and the gradients with respect to the
 * activations (2NT + 2A); the frozen base's weight gradients are never computed. A LoRA DPO step
 * adds the reference model's forward pass (2NT + A) over the same sequences, and gradient
 * checkpointing one more forward pass. Each is measured with checkpointing and without
 * ({@code -Dbench.checkpointing=on|off|both}); then TRL + PEFT do the same steps with the same
 * setting (src/test/python/trl_bench.py) for tokens/s and peak resident memory side by side.
 */
public final class TrainingBenchmark {
    static final int SEQ = 256;
    static final int SFT_BATCH = 4;
    static final int DPO_PAIRS = 2;
    static final int STEPS = 3;

    private TrainingBenchmark() {
    }

    public static void main(String[] args) {
        Path dir = BenchCheckpoint.smolLm2(args.length > 0 ? Path.of(args[0]) : BenchCheckpoint.SMOLLM2_DIR);
        ModelConfig config = BenchCheckpoint.SMOLLM2;
        // Load the engine before asking it anything: with the checkpoint already written, nothing else has.
        ai.djl.engine.Engine.getEngine("PyTorch");
        TrainingAllocator.apply(); // as the worker does (AlignmentRun), before anything large is allocated
        System.out.printf("machine: %d cores, load average %.2f at start; engine threads %d%n",
                Runtime.getRuntime().availableProcessors(), ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(),
                JniUtils.getNumThreads());
        double matmul = matmulRate();
        System.out.printf("fp32 matmul 2048^3: %.1f GFLOP/s (the baseline)%n", matmul / 1e9);

        long multiplying = 0;
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu())) {
            for (var e : model.parameters().entrySet()) {
                if (e.getValue().getShape().dimension() == 2) multiplying += e.getValue().getShape().size();
            }
            System.out.printf("model: SmolLM2-135M shape, %,d multiplying parameters; LoRA r=16 on all 7 projections; sequences of %d tokens%n",
                    multiplying, SEQ);
            String modes = System.getProperty("bench.checkpointing", "both");
            if (!List.of("off", "on", "both").contains(modes)) throw new IllegalArgumentException("bench.checkpointing must be off, on or both, not " + modes);
            List<Stage> stages = new ArrayList<>();
            // with checkpointing first: memory freed in one stage stays resident (glibc keeps it), so
            // the stage with the smaller peak is measured before the one with the larger
            for (boolean checkpointing : new boolean[] {true, false}) {
                if (modes.equals(checkpointing ? "off" : "on")) continue;
                stages.addAll(steps(model, dir, config, multiplying, matmul, checkpointing));
            }
            trl(dir, stages);
        }
    }

    /** One measured stage: PrefLoop's best step time and peak resident set for it. */
    record Stage(String kind, boolean checkpointing, double seconds, double tokens, long peak) {
    }

    /** LoRA SFT then DPO steps with gradient checkpointing on or off; each stage's peak is its own (VmHWM reset first). */
    private static List<Stage> steps(LlamaModel model, Path dir, ModelConfig config, long multiplying, double matmul, boolean checkpointing) {
        model.setGradientCheckpointing(checkpointing);
        SplittableRandom r = new SplittableRandom(3);
        double attentionPerSeq = 4.0 * SEQ * SEQ * config.numAttentionHeads() * config.headDim() * config.numHiddenLayers();
        List<String> targets = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
        try (LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(16, 32, targets, dir.toString()), 1, false)) {
            Trainable trainable = Trainable.lora(adapter);
            List<SequenceLogProbs.Sequence> sft = new ArrayList<>();
            for (int i = 0; i < SFT_BATCH; i++) sft.add(SequenceLogProbs.Sequence.of(ids(r, 64), ids(r, SEQ - 64)));
            resetPeakRss();
            double sftSeconds;
            try (SftTrainer trainer = new SftTrainer(model, trainable, AdamW.defaults(), 1.0)) {
                sftSeconds = best(() -> trainer.step(sft, 1, 1e-4));
            }
            long sftPeak = peakRss();
            double sftTokens = SFT_BATCH * SEQ;
            // checkpointing recomputes each layer's forward pass once more (2NT + A)
            double extra = checkpointing ? 1 : 0;
            double sftFlops = (4 + 2 * extra) * multiplying * sftTokens + (3 + extra) * attentionPerSeq * SFT_BATCH;

            List<DpoTrainer.Pair> pairs = new ArrayList<>();
            for (int i = 0; i < DPO_PAIRS; i++) pairs.add(new DpoTrainer.Pair(ids(r, 64), ids(r, SEQ - 64), ids(r, SEQ - 64), 1));
            resetPeakRss();
            double dpoSeconds;
            try (DpoTrainer trainer = new DpoTrainer(model, trainable, AdamW.defaults(), DpoTrainer.Settings.defaults())) {
                dpoSeconds = best(() -> trainer.step(pairs, 1, 1e-4));
            }
            long dpoPeak = peakRss();
            double dpoTokens = 2 * DPO_PAIRS * SEQ;
            double dpoFlops = (6 + 2 * extra) * multiplying * dpoTokens + (4 + extra) * attentionPerSeq * 2 * DPO_PAIRS;

            String how = checkpointing ? ", gradient checkpointing" : "";
            report("LoRA SFT step (batch " + SFT_BATCH + how + ")", sftSeconds, sftTokens, sftFlops, matmul);
            report("LoRA DPO step (" + DPO_PAIRS + " pairs" + how + ")", dpoSeconds, dpoTokens, dpoFlops, matmul);
            long lora = MemoryEstimate.loraParameters(config, 16, targets);
            MemoryEstimate sftEstimate = MemoryEstimate.of(config, lora, SFT_BATCH, SEQ, checkpointing);
            MemoryEstimate dpoEstimate = MemoryEstimate.of(config, lora, 2 * DPO_PAIRS, SEQ, checkpointing);
            System.out.printf("peak resident memory (VmHWM, the JVM and libtorch)%s: SFT %s (estimate %s), DPO %s (estimate %s)%n", how,
                    MemoryEstimate.gib(sftPeak), MemoryEstimate.gib(sftEstimate.total()), MemoryEstimate.gib(dpoPeak), MemoryEstimate.gib(dpoEstimate.total()));
            return List.of(new Stage("sft", checkpointing, sftSeconds, sftTokens, sftPeak), new Stage("dpo", checkpointing, dpoSeconds, dpoTokens, dpoPeak));
        }
    }

    /**
     * TRL + PEFT doing the same LoRA steps on the same checkpoint, CPU, thread count and gradient
     * checkpointing setting (src/test/python/trl_bench.py; TRL 1.13 would turn checkpointing on by
     * default), and the ratios; skipped, saying so, without python3 and trl.
     */
    private static void trl(Path dir, List<Stage> stages) {
        String why = Python.missing("trl", "peft", "transformers", "datasets", "torch");
        if (why != null) {
            System.out.println("TRL comparison skipped: " + why);
            return;
        }
        System.out.println("| step | gradient checkpointing | PrefLoop tokens/s | TRL + PEFT tokens/s | ratio | PrefLoop peak RSS | TRL peak RSS | peak ratio |");
        System.out.println("|---|---|---|---|---|---|---|---|");
        for (boolean checkpointing : new boolean[] {true, false}) {
            if (stages.stream().noneMatch(st -> st.checkpointing() == checkpointing)) continue;
            try {
                Path log = Files.createTempFile("trl-bench", ".log");
                Python.run(List.of("src/test/python/trl_bench.py", dir.toString(), String.valueOf(JniUtils.getNumThreads()),
                        String.valueOf(SEQ), String.valueOf(SFT_BATCH), String.valueOf(DPO_PAIRS), String.valueOf(STEPS),
                        "cpu", "float32", String.valueOf(checkpointing)), log, 3600);
                var json = new com.fasterxml.jackson.databind.ObjectMapper();
                for (String line : Files.readAllLines(log)) {
                    if (!line.startsWith("{\"stage\"")) continue; // the trainers log Python dicts too
                    var n = json.readTree(line);
                    String kind = n.get("stage").asText();
                    Stage ours = stages.stream().filter(st -> st.kind().equals(kind) && st.checkpointing() == checkpointing).findFirst().orElseThrow();
                    double tokens = ours.tokens() / ours.seconds(), theirs = n.get("tokens_per_second").asDouble();
                    long theirPeak = n.get("peak_rss_bytes").asLong();
                    System.out.printf("| LoRA %s | %s | %.0f | %.0f | %.2f | %s | %s | %.2f |%n",
                            kind.equals("sft") ? "SFT, batch " + SFT_BATCH : "DPO, " + DPO_PAIRS + " pairs", checkpointing ? "on" : "off",
                            tokens, theirs, tokens / theirs, MemoryEstimate.gib(ours.peak()), MemoryEstimate.gib(theirPeak), (double) ours.peak() / theirPeak);
                }
            } catch (Exception e) {
                System.out.println("TRL comparison (gradient checkpointing " + checkpointing + ") failed: " + e.getMessage());
            }
        }
    }

    /** VmHWM back to the current resident set (Linux 4.0+), so the next peak is the next stage's own; a no-op elsewhere. */
    static void resetPeakRss() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (java.io.IOException | UnsupportedOperationException e) {
            // no /proc: peaks then accumulate, as before
        }
    }

    /** The process's peak resident set (VmHWM), or -1 where /proc is not there. */
    static long peakRss() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith("VmHWM:")) return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (java.io.IOException e) {
            return -1;
        }
        return -1;
    }

    private static void report(String what, double seconds, double tokens, double flops, double matmul) {
        double rate = flops / seconds;
        System.out.printf("%-28s %6.2f s/step  %7.0f tokens/s  %6.1f GFLOP/s  MFU %.2f of the matmul rate%n",
                what, seconds, tokens / seconds, rate / 1e9, rate / matmul);
    }

    private static long[] ids(SplittableRandom r, int n) {
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = r.nextInt(40);
        return ids;
    }

    /** Best wall time of STEPS runs after one warm-up. */
    private static double best(Runnable step) {
        step.run();
        double best = Double.MAX_VALUE;
        for (int i = 0; i < STEPS; i++) {
            long t = System.nanoTime();
            step.run();
            best = Math.min(best, (System.nanoTime() - t) / 1e9);
        }
        return best;
    }

    /** FLOP/s of a 2048x2048 by 2048x2048 fp32 product, best of five. */
    static double matmulRate() {
        JniUtils.setGradMode(false);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray a = m.randomNormal(new Shape(2048, 2048));
            NDArray b = m.randomNormal(new Shape(2048, 2048));
            a.matMul(b).close();
            double best = Double.MAX_VALUE;
            for (int i = 0; i < 5; i++) {
                long t = System.nanoTime();
                NDArray c = a.matMul(b);
                c.getFloat(0, 0);
                best = Math.min(best, (System.nanoTime() - t) / 1e9);
                c.close();
            }
            return 2.0 * 2048 * 2048 * 2048 / best;
        }
    }
}
