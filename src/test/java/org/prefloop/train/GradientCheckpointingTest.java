package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.TinyCheckpoint;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * gradient_checkpointing: the layers recomputed during backward give the gradients of the plain
 * pass, for a LoRA adapter and for full fine-tuning (embeddings and tied head included), through
 * the trainers too; and a step holds less memory.
 */
class GradientCheckpointingTest {
    private static final List<String> ALL = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    private static List<SequenceLogProbs.Sequence> batch() {
        return List.of(
                SequenceLogProbs.Sequence.of(new long[]{3, 4, 5, 6}, new long[]{7, 8, 9}),
                SequenceLogProbs.Sequence.of(new long[]{10, 11}, new long[]{12, 13, 14, 15, 16, 17}));
    }

    /** Every trainable parameter's gradient of the summed NLL, with checkpointing on or off. */
    private static Map<String, float[]> gradients(LlamaModel model, Trainable trainable, boolean checkpointing) {
        model.setGradientCheckpointing(checkpointing);
        model.setProjectionHook(trainable.hook(true));
        try (NDManager scope = model.manager().newSubManager();
             GradientCollector c = Engine.getInstance().newGradientCollector()) {
            NDArray loss = SequenceLogProbs.of(model, batch(), scope).sum().neg();
            c.backward(loss);
            model.backwardCheckpoints();
            return takeGradients(trainable);
        } finally {
            model.setGradientCheckpointing(false);
            model.setProjectionHook(null);
        }
    }

    /** Each trainable parameter's gradient, by name, zeroed after reading for the next pass. */
    static Map<String, float[]> takeGradients(Trainable trainable) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (var e : trainable.parameters().entrySet()) {
            try (NDArray g = e.getValue().getGradient()) {
                out.put(e.getKey(), g.toFloatArray());
                g.subi(g); // zero it for the next pass (the wrapper shares the gradient's storage)
            }
        }
        return out;
    }

    private static void assertSame(Map<String, float[]> plain, Map<String, float[]> checkpointed) {
        assertEquals(plain.keySet(), checkpointed.keySet());
        double largest = 0;
        for (String k : plain.keySet()) {
            float[] a = plain.get(k), b = checkpointed.get(k);
            for (int i = 0; i < a.length; i++) {
                largest = Math.max(largest, Math.abs(a[i]));
                assertEquals(a[i], b[i], 1e-5 + 1e-4 * Math.abs(a[i]), k + "[" + i + "]");
            }
        }
        assertTrue(largest > 1e-4, "the gradients are not all zero (largest " + largest + ")");
    }

    @Test
    void loraGradientsEqualThePlainPass(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), DpoTrainerTest.CONFIG, 3, DpoTrainerTest.CHARS);
        try (LlamaModel model = LlamaModel.load(ckpt)) {
            // B non-zero (init true), so the gradient reaches A as well
            LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(4, 8, ALL, null), 9, true);
            Trainable trainable = Trainable.lora(adapter);
            assertSame(gradients(model, trainable, false), gradients(model, trainable, true));
            adapter.close();
        }
    }

    @Test
    void fullFineTuningGradientsEqualThePlainPassEmbeddingsIncluded(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), DpoTrainerTest.CONFIG, 3, DpoTrainerTest.CHARS);
        try (LlamaModel model = LlamaModel.load(ckpt)) {
            assertTrue(model.config().tieWordEmbeddings(), "the tied head sends gradient into the embeddings from both ends");
            Trainable trainable = Trainable.full(model);
            Map<String, float[]> plain = gradients(model, trainable, false);
            assertSame(plain, gradients(model, trainable, true));
            trainable.parameters().values().forEach(p -> p.setRequiresGradient(false));
        }
    }

    @Test
    void aDpoStepThroughTheTrainerMatchesAndDropoutReplaysTheSameMasks(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), DpoTrainerTest.CONFIG, 3, DpoTrainerTest.CHARS);
        List<DpoTrainer.Pair> pairs = List.of(
                new DpoTrainer.Pair(new long[]{3, 4, 5}, new long[]{6, 7, 8, 9}, new long[]{10, 11}, 1),
                new DpoTrainer.Pair(new long[]{12, 13}, new long[]{14, 15}, new long[]{16, 17, 18, 19, 20}, 1));
        double[] plain = dpoSteps(ckpt, pairs, false, 0.0);
        double[] checkpointed = dpoSteps(ckpt, pairs, true, 0.0);
        for (int i = 0; i < plain.length; i++) assertEquals(plain[i], checkpointed[i], 1e-5, "step " + (i / 2 + 1) + (i % 2 == 0 ? " loss" : " grad_norm"));
        // with dropout the recomputation must see the masks of the forward pass; run twice, identical
        double[] a = dpoSteps(ckpt, pairs, true, 0.3), b = dpoSteps(ckpt, pairs, true, 0.3);
        for (int i = 0; i < a.length; i++) assertEquals(a[i], b[i], 0.0, "dropout run, value " + i);
    }

    /** Three LoRA DPO steps from the same start: loss and gradient norm of each. */
    private static double[] dpoSteps(Path ckpt, List<DpoTrainer.Pair> pairs, boolean checkpointing, double dropout) {
        try (LlamaModel model = LlamaModel.load(ckpt)) {
            LoraAdapter adapter = LoraAdapter.create(model, new LoraAdapter.Config("LORA", "CAUSAL_LM", 4, 8.0, dropout, ALL, false, "none", null, false), 9, true);
            Trainable trainable = Trainable.lora(adapter);
            AdamW optimizer = AdamW.defaults();
            model.setGradientCheckpointing(checkpointing);
            double[] out = new double[6];
            try (DpoTrainer trainer = new DpoTrainer(model, trainable, optimizer, DpoTrainer.Settings.defaults())) {
                for (int s = 0; s < 3; s++) {
                    Engine.getInstance().setRandomSeed(100 + s);
                    DpoTrainer.Step step = trainer.step(pairs, 2, 1e-2);
                    out[2 * s] = step.loss();
                    out[2 * s + 1] = step.gradNorm();
                }
            } finally {
                adapter.close();
                optimizer.close();
            }
            return out;
        }
    }

    /**
     * Peak resident memory of a LoRA SFT step (backward included) at 512 tokens on a model of 16
     * layers: with checkpointing it must be well below the plain step's. Each mode starts from the
     * peak reset to the current footprint ({@code /proc/self/clear_refs}); the checkpointed step runs
     * first, so memory the plain step's allocator keeps afterwards cannot flatter it.
     */
    @Test
    void aCheckpointedStepHoldsLessMemory(@TempDir Path tmp) throws Throwable {
        ModelConfig config = ModelConfig.llama(DpoTrainerTest.CHARS.characterVocabSize(), 256, 688, 16, 4, 2);
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), config, 3, DpoTrainerTest.CHARS);
        SplittableRandom r = new SplittableRandom(4);
        List<SequenceLogProbs.Sequence> batch = new ArrayList<>();
        for (int i = 0; i < 2; i++) batch.add(SequenceLogProbs.Sequence.of(ids(r, 64), ids(r, 448)));
        try (LlamaModel model = LlamaModel.load(ckpt)) {
            LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(16, 32, ALL, null), 1, false);
            Trainable trainable = Trainable.lora(adapter);
            long checkpointed = stepPeak(model, trainable, batch, true);
            long plain = stepPeak(model, trainable, batch, false);
            System.out.printf("LoRA SFT step, 2 x 512 tokens, 16 layers of 256: the step adds %s to the resident peak with checkpointing, %s without%n",
                    MemoryEstimate.gib(checkpointed), MemoryEstimate.gib(plain));
            assertTrue(checkpointed < 0.6 * plain, "checkpointed " + checkpointed + " bytes against plain " + plain);
            adapter.close();
        }
    }

    private static long stepPeak(LlamaModel model, Trainable trainable, List<SequenceLogProbs.Sequence> batch, boolean checkpointing) throws Throwable {
        model.setGradientCheckpointing(checkpointing);
        System.gc();
        releaseFreedMemory();
        Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        long before = TrainingBenchmark.peakRss();
        AdamW optimizer = AdamW.defaults();
        try (SftTrainer trainer = new SftTrainer(model, trainable, optimizer, 1.0)) {
            trainer.step(batch, 1, 1e-4);
        } finally {
            model.setGradientCheckpointing(false);
            optimizer.close();
        }
        return TrainingBenchmark.peakRss() - before;
    }

    /**
     * Hands the pages glibc keeps after frees back to the system ({@code malloc_trim(0)}), so that
     * the resident peak measures what the step itself holds: in a JVM that ran other tests, a step
     * could otherwise fit in memory freed before it and add nothing to the peak, checkpointed or not.
     */
    private static void releaseFreedMemory() {
        com.sun.jna.NativeLibrary.getInstance("c").getFunction("malloc_trim").invokeInt(new Object[] {0L});
    }

    private static long[] ids(SplittableRandom r, int n) {
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = r.nextInt(30);
        return ids;
    }
}
