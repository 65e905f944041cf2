package org.prefloop.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import com.sun.jna.NativeLibrary;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.BenchCheckpoint;
import org.prefloop.model.LlamaModel;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The speed cost of TrainingAllocator's fixed 256 KiB mmap threshold, measured by alternating in one
 * process (so both sides share the machine's load): LoRA SFT steps of TrainingBenchmark's shape
 * (SmolLM2-135M, 4 x 256 tokens, r=16 on all seven projections) with the threshold at 256 KiB, then
 * at 32 MiB (glibc's ceiling, where its dynamic threshold settles once a step has freed its large
 * blocks: activations come from the arenas), and so on. Not a test:
 * {@code java ... org.prefloop.train.AllocatorSpeedCheck [rounds]}.
 */
public final class AllocatorSpeedCheck {
    private AllocatorSpeedCheck() {
    }

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        var dir = BenchCheckpoint.smolLm2(BenchCheckpoint.SMOLLM2_DIR);
        Engine.getEngine("PyTorch");
        SplittableRandom r = new SplittableRandom(3);
        List<SequenceLogProbs.Sequence> batch = new ArrayList<>();
        for (int i = 0; i < TrainingBenchmark.SFT_BATCH; i++) {
            batch.add(SequenceLogProbs.Sequence.of(ids(r, 64), ids(r, TrainingBenchmark.SEQ - 64)));
        }
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu())) {
            LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(16, 32,
                    List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), dir.toString()), 1, false);
            try (AdamW optimizer = AdamW.defaults(); SftTrainer trainer = new SftTrainer(model, Trainable.lora(adapter), optimizer, 1.0)) {
                long[] thresholds = {256 * 1024, 32 << 20};
                double[] best = {Double.MAX_VALUE, Double.MAX_VALUE};
                double[] sum = new double[2];
                for (long t : thresholds) { // one warm-up step each
                    mallopt(t);
                    trainer.step(batch, 1, 1e-4);
                }
                for (int round = 0; round < rounds; round++) {
                    for (int k = 0; k < 2; k++) {
                        mallopt(thresholds[k]);
                        long start = System.nanoTime();
                        trainer.step(batch, 1, 1e-4);
                        double s = (System.nanoTime() - start) / 1e9;
                        best[k] = Math.min(best[k], s);
                        sum[k] += s;
                        System.out.printf("round %d, threshold %,d: %.2f s%n", round, thresholds[k], s);
                    }
                }
                System.out.printf("256 KiB: best %.2f s, mean %.2f s | 32 MiB: best %.2f s, mean %.2f s | tokens/s ratio 256 KiB / 32 MiB: best %.3f, mean %.3f%n",
                        best[0], sum[0] / rounds, best[1], sum[1] / rounds, best[1] / best[0], sum[1] / sum[0]);
            }
            adapter.close();
        }
    }

    private static void mallopt(long threshold) {
        NativeLibrary.getInstance("c").getFunction("mallopt").invokeInt(new Object[] {-3, (int) threshold});
    }

    private static long[] ids(SplittableRandom r, int n) {
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = r.nextInt(40);
        return ids;
    }
}
