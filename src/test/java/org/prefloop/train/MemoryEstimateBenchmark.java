package org.prefloop.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The pre-flight memory estimate against the measured peak resident set (VmHWM) of a process that
 * loads a checkpoint and takes two LoRA steps (r=16 on all seven projections; the second step
 * holds AdamW's moments) of one stage, as Preflight would size them. One configuration per JVM,
 * since the peak only grows:
 * <pre>java -cp target/classes:target/test-classes:$(cat cp.txt) org.prefloop.train.MemoryEstimateBenchmark smollm2-135m dpo 512 false</pre>
 * Arguments: shape ({@code smollm2-135m} or {@code qwen2.5-0.5b}, random weights written once
 * under target/), stage ({@code sft}: one sequence; {@code dpo}: one pair), tokens per sequence,
 * gradient checkpointing.
 */
public final class MemoryEstimateBenchmark {
    private MemoryEstimateBenchmark() {
    }

    static ModelConfig shape(String name) {
        return switch (name) {
            case "smollm2-135m" -> org.prefloop.model.BenchCheckpoint.SMOLLM2;
            case "qwen2.5-0.5b" -> new ModelConfig("qwen2", 151936, 896, 4864, 24, 14, 2, 64, 1e-6, 1000000.0, null, 32768,
                    true, true, null, null, "float32", 0);
            default -> throw new IllegalArgumentException("shape is smollm2-135m or qwen2.5-0.5b, not " + name);
        };
    }

    public static void main(String[] args) throws Exception {
        String name = args.length > 0 ? args[0] : "smollm2-135m";
        String stage = args.length > 1 ? args[1] : "sft";
        int seq = args.length > 2 ? Integer.parseInt(args[2]) : 512;
        boolean checkpointing = args.length > 3 && Boolean.parseBoolean(args[3]);
        ModelConfig config = shape(name);
        Path dir = Path.of("target/bench-" + name);
        if (!Files.exists(dir.resolve("model.safetensors"))) {
            System.out.println("writing " + dir + " ...");
            TinyCheckpoint.write(dir, config, 135, TokenizerSpec.characters("abcdefghijklmnopqrstuvwxyz0123456789 .,\n"));
            System.out.println("written; run again to measure (writing held memory this process would count)");
            return;
        }
        Engine.getEngine("PyTorch");
        TrainingAllocator.apply(); // as the worker does, before the load (0 with -Dprefloop.train.mmapThreshold=0)
        List<String> targets = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
        SplittableRandom r = new SplittableRandom(3);
        long start = System.nanoTime();
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu())) {
            System.gc(); // the loader's mapped files and scratch buffers go with their Java owners
            long loaded = TrainingBenchmark.peakRss();
            LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(16, 32, targets, dir.toString()), 1, false);
            Trainable trainable = Trainable.lora(adapter);
            AdamW optimizer = AdamW.defaults();
            model.setGradientCheckpointing(checkpointing);
            int sequences;
            if (stage.equals("sft")) {
                sequences = 1;
                List<SequenceLogProbs.Sequence> batch = List.of(SequenceLogProbs.Sequence.of(ids(r, 64), ids(r, seq - 64)));
                try (SftTrainer trainer = new SftTrainer(model, trainable, optimizer, 1.0)) {
                    for (int i = 0; i < 2; i++) trainer.step(batch, 1, 1e-4);
                }
            } else {
                sequences = 2;
                List<DpoTrainer.Pair> pairs = new ArrayList<>(List.of(new DpoTrainer.Pair(ids(r, 64), ids(r, seq - 64), ids(r, seq - 64), 1)));
                try (DpoTrainer trainer = new DpoTrainer(model, trainable, optimizer, DpoTrainer.Settings.defaults())) {
                    for (int i = 0; i < 2; i++) trainer.step(pairs, 1, 1e-4);
                }
            }
            long peak = TrainingBenchmark.peakRss();
            MemoryEstimate m = MemoryEstimate.of(config, MemoryEstimate.loraParameters(config, 16, targets), sequences, seq, checkpointing);
            System.out.printf("%s LoRA %s, %d x %d tokens%s: measured peak RSS %s (after loading %s), estimate %s "
                            + "(runtime %s, weights %s, loading %s, adapter+grads+AdamW %s, activations %s): estimate/measured %.2f; %.0f s, load average %.1f%n",
                    name, stage.toUpperCase(), sequences, seq, checkpointing ? ", gradient checkpointing" : "",
                    MemoryEstimate.gib(peak), MemoryEstimate.gib(loaded), MemoryEstimate.gib(m.total()), MemoryEstimate.gib(m.runtime()),
                    MemoryEstimate.gib(m.weights()), MemoryEstimate.gib(m.loading()), MemoryEstimate.gib(m.gradients() + m.optimizer()), MemoryEstimate.gib(m.activations()),
                    m.total() / (double) peak, (System.nanoTime() - start) / 1e9, ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
            optimizer.close();
            adapter.close();
        }
    }

    private static long[] ids(SplittableRandom r, int n) {
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = r.nextInt(40);
        return ids;
    }
}
