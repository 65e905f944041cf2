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
 * adds the reference model's forward pass (2NT + A) over the same sequences. Then TRL + PEFT do
 * the same steps (src/test/python/trl_bench.py) for tokens/s and peak resident memory side by side.
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
        SplittableRandom r = new SplittableRandom(3);
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu())) {
            for (var e : model.parameters().entrySet()) {
                if (e.getValue().getShape().dimension() == 2) multiplying += e.getValue().getShape().size();
            }
            double attentionPerSeq = 4.0 * SEQ * SEQ * config.numAttentionHeads() * config.headDim() * config.numHiddenLayers();
            LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(16, 32,
                    List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), dir.toString()), 1, false);
            Trainable trainable = Trainable.lora(adapter);

            List<SequenceLogProbs.Sequence> sft = new ArrayList<>();
            for (int i = 0; i < SFT_BATCH; i++) sft.add(SequenceLogProbs.Sequence.of(ids(r, 64), ids(r, SEQ - 64)));
            double sftSeconds;
            try (SftTrainer trainer = new SftTrainer(model, trainable, AdamW.defaults(), 1.0)) {
                sftSeconds = best(() -> trainer.step(sft, 1, 1e-4));
            }
            long sftPeak = peakRss();
            System.out.println("glibc mmap threshold fixed by the trainers at " + TrainingAllocator.apply() + " bytes (0: glibc's dynamic default)");
            double sftTokens = SFT_BATCH * SEQ;
            double sftFlops = 4 * multiplying * sftTokens + 3 * attentionPerSeq * SFT_BATCH;

            List<DpoTrainer.Pair> pairs = new ArrayList<>();
            for (int i = 0; i < DPO_PAIRS; i++) pairs.add(new DpoTrainer.Pair(ids(r, 64), ids(r, SEQ - 64), ids(r, SEQ - 64), 1));
            double dpoSeconds;
            try (DpoTrainer trainer = new DpoTrainer(model, trainable, AdamW.defaults(), DpoTrainer.Settings.defaults())) {
                dpoSeconds = best(() -> trainer.step(pairs, 1, 1e-4));
            }
            long dpoPeak = peakRss();
            double dpoTokens = 2 * DPO_PAIRS * SEQ;
            double dpoFlops = 6 * multiplying * dpoTokens + 4 * attentionPerSeq * 2 * DPO_PAIRS;
            adapter.close();

            System.out.printf("model: SmolLM2-135M shape, %,d multiplying parameters; LoRA r=16 on all 7 projections; sequences of %d tokens%n",
                    multiplying, SEQ);
            report("LoRA SFT step (batch " + SFT_BATCH + ")", sftSeconds, sftTokens, sftFlops, matmul);
            report("LoRA DPO step (" + DPO_PAIRS + " pairs)", dpoSeconds, dpoTokens, dpoFlops, matmul);
            long lora = MemoryEstimate.loraParameters(config, 16, List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"));
            MemoryEstimate sftEstimate = MemoryEstimate.of(config, lora, SFT_BATCH, SEQ);
            MemoryEstimate dpoEstimate = MemoryEstimate.of(config, lora, 2 * DPO_PAIRS, SEQ);
            System.out.printf("peak resident memory (VmHWM, the JVM and libtorch): after SFT %s (estimate %s), after DPO %s (estimate %s)%n",
                    MemoryEstimate.gib(sftPeak), MemoryEstimate.gib(sftEstimate.total()), MemoryEstimate.gib(dpoPeak), MemoryEstimate.gib(dpoEstimate.total()));
            trl(dir, sftSeconds, sftTokens, sftPeak, dpoSeconds, dpoTokens, dpoPeak);
        }
    }

    /**
     * TRL + PEFT doing the same LoRA steps on the same checkpoint, CPU and thread count
     * (src/test/python/trl_bench.py), and the ratios; skipped, saying so, without python3 and trl.
     */
    private static void trl(Path dir, double sftSeconds, double sftTokens, long sftPeak, double dpoSeconds, double dpoTokens, long dpoPeak) {
        String why = Python.missing("trl", "peft", "transformers", "datasets", "torch");
        if (why != null) {
            System.out.println("TRL comparison skipped: " + why);
            return;
        }
        try {
            Path log = Files.createTempFile("trl-bench", ".log");
            Python.run(List.of("src/test/python/trl_bench.py", dir.toString(), String.valueOf(JniUtils.getNumThreads()),
                    String.valueOf(SEQ), String.valueOf(SFT_BATCH), String.valueOf(DPO_PAIRS), String.valueOf(STEPS)), log, 3600);
            var json = new com.fasterxml.jackson.databind.ObjectMapper();
            System.out.println("| step | PrefLoop tokens/s | TRL + PEFT tokens/s | ratio | PrefLoop peak RSS | TRL peak RSS |");
            System.out.println("|---|---|---|---|---|---|");
            StringBuilder loaded = new StringBuilder();
            for (String line : Files.readAllLines(log)) {
                if (!line.startsWith("{\"stage\"")) continue; // the trainers log Python dicts too
                var n = json.readTree(line);
                if (n.has("rss_after_load_bytes")) {
                    loaded.append(" ").append(n.get("stage").asText()).append(" ").append(MemoryEstimate.gib(n.get("rss_after_load_bytes").asLong()));
                }
                boolean sft = n.get("stage").asText().equals("sft");
                double ours = (sft ? sftTokens / sftSeconds : dpoTokens / dpoSeconds), theirs = n.get("tokens_per_second").asDouble();
                System.out.printf("| LoRA %s | %.0f | %.0f | %.2f | %s | %s |%n", sft ? "SFT, batch " + SFT_BATCH : "DPO, " + DPO_PAIRS + " pairs",
                        ours, theirs, ours / theirs, MemoryEstimate.gib(sft ? sftPeak : dpoPeak), MemoryEstimate.gib(n.get("peak_rss_bytes").asLong()));
            }
            if (!loaded.isEmpty()) System.out.println("TRL's resident set once the model has loaded:" + loaded);
        } catch (Exception e) {
            System.out.println("TRL comparison failed: " + e.getMessage());
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
