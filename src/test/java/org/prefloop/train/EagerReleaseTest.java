package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.TinyCheckpoint;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * With gradients recording, the forward pass closes each decoder layer's arrays when the layer
 * ends (only its output leaves the layer's scope). Closing a DJL array drops its handle's
 * reference; what autograd saved it keeps, so backward must give bit for bit the gradients of a
 * pass that keeps every array open until the step ends (the {@code prefloop.train.keepLayerArrays}
 * switch), with LoRA dropout's masks and for full fine-tuning too, and with the garbage collector
 * run between forward and backward (a freed Java buffer under a saved tensor would show here).
 */
class EagerReleaseTest {
    private static final String KEEP = "prefloop.train.keepLayerArrays";
    private static final List<String> ALL = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    private static List<SequenceLogProbs.Sequence> batch() {
        return List.of(
                SequenceLogProbs.Sequence.of(new long[]{3, 4, 5, 6}, new long[]{7, 8, 9}),
                SequenceLogProbs.Sequence.of(new long[]{10, 11}, new long[]{12, 13, 14, 15, 16, 17}));
    }

    /** What one pass left: every trainable parameter's gradient and the arrays still open in the step's manager after the forward. */
    private record Pass(Map<String, float[]> gradients, int openAfterForward) {
    }

    private static Pass pass(LlamaModel model, Trainable trainable, boolean keepLayerArrays) {
        if (keepLayerArrays) System.setProperty(KEEP, "true");
        model.setProjectionHook(trainable.hook(true));
        Engine.getInstance().setRandomSeed(42); // the same dropout masks in both passes
        Map<String, float[]> out;
        int open;
        try (NDManager scope = model.manager().newSubManager();
             GradientCollector c = Engine.getInstance().newGradientCollector()) {
            NDArray loss = SequenceLogProbs.of(model, batch(), scope).sum().neg();
            open = scope.getManagedArrays().size();
            System.gc();
            c.backward(loss);
            out = GradientCheckpointingTest.takeGradients(trainable);
        } finally {
            System.clearProperty(KEEP);
            model.setProjectionHook(null);
        }
        return new Pass(out, open);
    }

    private static void assertIdentical(Pass kept, Pass released) {
        assertEquals(kept.gradients().keySet(), released.gradients().keySet());
        double largest = 0;
        for (String k : kept.gradients().keySet()) {
            float[] a = kept.gradients().get(k);
            assertArrayEquals(a, released.gradients().get(k), 0f, k);
            for (float v : a) largest = Math.max(largest, Math.abs(v));
        }
        assertTrue(largest > 1e-4, "the gradients are not all zero (largest " + largest + ")");
        // the layers' arrays really were closed: far fewer remain open in the step's manager
        assertTrue(released.openAfterForward() * 3 < kept.openAfterForward(),
                "open arrays after the forward: " + released.openAfterForward() + " released vs " + kept.openAfterForward() + " kept");
    }

    @Test
    void loraGradientsWithDropoutAreThoseOfThePassThatKeepsEveryArray(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), DpoTrainerTest.CONFIG, 3, DpoTrainerTest.CHARS);
        try (LlamaModel model = LlamaModel.load(ckpt)) {
            LoraAdapter adapter = LoraAdapter.create(model,
                    new LoraAdapter.Config("LORA", "CAUSAL_LM", 4, 8.0, 0.3, ALL, false, "none", null, false), 9, true);
            Trainable trainable = Trainable.lora(adapter);
            Pass kept = pass(model, trainable, true);
            Pass released = pass(model, trainable, false);
            assertIdentical(kept, released);
            adapter.close();
        }
    }

    @Test
    void fullFineTuningGradientsAreThoseOfThePassThatKeepsEveryArray(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), DpoTrainerTest.CONFIG, 3, DpoTrainerTest.CHARS);
        try (LlamaModel model = LlamaModel.load(ckpt)) {
            Trainable trainable = Trainable.full(model);
            try {
                assertIdentical(pass(model, trainable, true), pass(model, trainable, false));
            } finally {
                trainable.parameters().values().forEach(p -> p.setRequiresGradient(false));
            }
        }
    }
}
