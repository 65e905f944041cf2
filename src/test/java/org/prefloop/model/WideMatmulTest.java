package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import ai.djl.pytorch.jni.JniUtils;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WideMatmulTest {
    // intermediate 4096 x hidden 64: gate/up/down reach WideMatmul's size threshold, attention's projections do not
    static final ModelConfig WIDE_MLP = ModelConfig.llama(LlamaModelTest.CHARS.characterVocabSize(), 64, 4096, 2, 4, 2);

    @TempDir
    Path tmp;

    private int engineThreads;

    @BeforeEach
    void decodeSetting() {
        Engine.getEngine("PyTorch"); // loads the native library JniUtils calls into
        engineThreads = JniUtils.getNumThreads();
        JniUtils.setNumThreads(1); // as Generator and DecodeBatch run decode steps
    }

    @AfterEach
    void restore() {
        JniUtils.setNumThreads(engineThreads);
    }

    @Test
    void onlyLargeWeightsGetMoreThreadsAndOnlyWhenTheEngineRunsFewer() {
        long large = WideMatmul.MIN_WEIGHT_ELEMENTS;
        assertEquals(2, WideMatmul.threadsFor(large, 2, 1));
        assertEquals(1, WideMatmul.threadsFor(large - 1, 2, 1));
        assertEquals(4, WideMatmul.threadsFor(large, 2, 4), "prefill and training keep the engine's threads");
        assertEquals(1, WideMatmul.threadsFor(large, 1, 1));
    }

    @Test
    void productMatchesTheSingleThreadedOneAndLeavesTheEngineOnOneThread() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray w = m.randomNormal(new Shape(WideMatmul.MIN_WEIGHT_ELEMENTS / 64, 64));
            NDArray bias = m.randomNormal(new Shape(WideMatmul.MIN_WEIGHT_ELEMENTS / 64));
            NDArray x = m.randomNormal(new Shape(1, 1, 64));
            float[] expected = Linear.linear(x, w, bias).singletonOrThrow().toFloatArray();
            float[] actual = WideMatmul.linear(x, w, bias, 2).toFloatArray();
            assertEquals(1, JniUtils.getNumThreads());
            assertClose(expected, actual, 1e-5);

            NDArray wrongWidth = m.randomNormal(new Shape(1, 1, 63));
            assertThrows(RuntimeException.class, () -> WideMatmul.linear(wrongWidth, w, null, 2));
            assertEquals(1, JniUtils.getNumThreads(), "a failed product still restores the thread count");
        }
    }

    @Test
    void greedyDecodeWithWideProductsGivesTheSameLogitsAsOneThread() throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), WIDE_MLP, 5, LlamaModelTest.CHARS);
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu())) {
            assertTrue(model.parameters().get("model.layers.0.mlp.up_proj.weight").size() >= WideMatmul.MIN_WEIGHT_ELEMENTS,
                    "the test model must reach the size threshold, else both runs take the same path");
            model.setDecodeMatmulThreads(1);
            List<float[]> single = decode(model);
            model.setDecodeMatmulThreads(2);
            List<float[]> wide = decode(model);
            assertEquals(1, JniUtils.getNumThreads());
            for (int i = 0; i < single.size(); i++) {
                assertClose(single.get(i), wide.get(i), 1e-5);
                assertEquals(argMax(single.get(i)), argMax(wide.get(i)), "step " + i);
            }
            assertThrows(IllegalArgumentException.class, () -> model.setDecodeMatmulThreads(0));
        }
    }

    /** The logits of a 5-token prompt's last position and of 6 greedy steps after it. */
    private static List<float[]> decode(LlamaModel model) {
        List<float[]> out = new ArrayList<>();
        try (NDManager m = model.manager().newSubManager(); KvCache cache = model.newCache(1, 16); NDScope scope = new NDScope()) {
            boolean grad = JniUtils.isGradMode();
            JniUtils.setGradMode(false);
            try {
                NDArray h = model.hidden(m.create(new long[][] {{3, 1, 4, 1, 5}}), null, cache);
                float[] logits = model.logits(h.get(":, -1:, :")).toFloatArray();
                out.add(logits);
                for (int i = 0; i < 6; i++) {
                    h = model.hidden(m.create(new long[] {argMax(logits)}, new Shape(1, 1)), null, cache);
                    logits = model.logits(h).toFloatArray();
                    out.add(logits);
                }
            } finally {
                JniUtils.setGradMode(grad);
            }
        }
        return out;
    }

    private static int argMax(float[] a) {
        int best = 0;
        for (int i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
        return best;
    }

    private static void assertClose(float[] expected, float[] actual, double tolerance) {
        assertEquals(expected.length, actual.length);
        float scale = 0;
        for (float e : expected) scale = Math.max(scale, Math.abs(e));
        for (int i = 0; i < expected.length; i++) {
            assertTrue(Math.abs(expected[i] - actual[i]) <= tolerance * Math.max(1, scale),
                    "element " + i + ": " + expected[i] + " vs " + actual[i]);
        }
    }
}
