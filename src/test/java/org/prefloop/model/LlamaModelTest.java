package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class LlamaModelTest {
    static final String ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 +=\n";
    static final TokenizerSpec CHARS = TokenizerSpec.characters(ALPHABET);
    static final ModelConfig BASE = ModelConfig.llama(CHARS.characterVocabSize(), 32, 64, 2, 4, 2)
            .withTiedEmbeddings(false).withRmsNormEps(1e-6);

    @TempDir
    Path tmp;

    static List<ModelConfig> architectures() {
        return List.of(
                BASE, // Llama 2/3 shape: grouped-query attention, untied head
                BASE.withTiedEmbeddings(true).withRope(500000.0, new ModelConfig.RopeScaling(8.0, 1.0, 4.0, 8)), // Llama 3.1/3.2
                BASE.withModelType("qwen2").withTiedEmbeddings(true), // q/k/v biases
                BASE.withModelType("qwen3").withHeadDim(16), // q/k norms, head_dim != hidden/heads
                BASE.withAttentionBias(true), // Llama with attention_bias: o_proj bias too
                BASE.withModelType("mistral"));
    }

    @ParameterizedTest
    @MethodSource("architectures")
    void logitsMatchADoublePrecisionReference(ModelConfig config) throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), config, 7, CHARS);
        randomizeNormsAndBiases(dir, 11); // zero biases and unit norms would hide a missing bias or norm
        long[] ids = {3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 30, 2, 41};
        double[][] expected = new ReferenceLlama(dir).logits(ids);
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); NDManager m = NDManager.newBaseManager()) {
            NDArray logits = model.logits(model.hidden(m.create(new long[][] {ids}), null, null));
            assertEquals(new Shape(1, ids.length, config.vocabSize()), logits.getShape());
            assertClose(expected, logits.get(0).toFloatArray(), 2e-5);
        }
    }

    @Test
    void rightPaddedBatchGivesEachSequenceItsOwnLogits() throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), BASE, 3, CHARS);
        randomizeNormsAndBiases(dir, 1);
        long[] a = {1, 2, 3, 4, 5, 6};
        long[] b = {7, 8, 9};
        ReferenceLlama ref = new ReferenceLlama(dir);
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); NDManager m = NDManager.newBaseManager()) {
            NDArray ids = m.create(new long[][] {a, {7, 8, 9, 0, 0, 0}});
            NDArray mask = m.create(new long[][] {{1, 1, 1, 1, 1, 1}, {1, 1, 1, 0, 0, 0}});
            NDArray logits = model.logits(model.hidden(ids, mask, null));
            assertClose(ref.logits(a), logits.get(0).toFloatArray(), 2e-5);
            assertClose(ref.logits(b), logits.get(new NDIndex("1, :3")).toFloatArray(), 2e-5);
        }
    }

    @Test
    void leftPaddedBatchGivesEachSequenceItsOwnLogits() throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), BASE, 3, CHARS);
        randomizeNormsAndBiases(dir, 1);
        long[] b = {7, 8, 9};
        ReferenceLlama ref = new ReferenceLlama(dir);
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); NDManager m = NDManager.newBaseManager()) {
            NDArray ids = m.create(new long[][] {{1, 2, 3, 4, 5, 6}, {0, 0, 0, 7, 8, 9}});
            NDArray mask = m.create(new long[][] {{1, 1, 1, 1, 1, 1}, {0, 0, 0, 1, 1, 1}});
            NDArray logits = model.logits(model.hidden(ids, mask, null));
            assertClose(ref.logits(b), logits.get(new NDIndex("1, 3:")).toFloatArray(), 2e-5);
        }
    }

    @Test
    void decodingWithTheCacheReproducesTheFullForward() throws Exception {
        ModelConfig config = BASE.withModelType("qwen3");
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), config, 5, CHARS);
        randomizeNormsAndBiases(dir, 2);
        long[] ids = {4, 8, 15, 16, 23, 42 % 40, 1, 2};
        double[][] expected = new ReferenceLlama(dir).logits(ids);
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); NDManager m = NDManager.newBaseManager();
             KvCache cache = model.newCache(1, 16)) {
            NDArray prefill = model.logits(model.hidden(m.create(new long[][] {java.util.Arrays.copyOf(ids, 5)}), null, cache));
            assertClose(java.util.Arrays.copyOf(expected, 5), prefill.get(0).toFloatArray(), 2e-5);
            for (int i = 5; i < ids.length; i++) {
                NDArray step = model.logits(model.hidden(m.create(new long[][] {{ids[i]}}), null, cache));
                assertClose(new double[][] {expected[i]}, step.get(0).toFloatArray(), 2e-5);
            }
            assertEquals(ids.length, cache.length());
        }
    }

    @Test
    void projectionHookDeltaActsLikeAChangedWeight() throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), BASE, 9, CHARS);
        String module = "model.layers.1.self_attn.v_proj";
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); NDManager m = NDManager.newBaseManager()) {
            NDArray ids = m.create(new long[][] {{5, 6, 7, 8}});
            NDArray delta = m.randomNormal(0, 0.05f, model.parameters().get(module + ".weight").getShape(), DataType.FLOAT32);
            float[] plain = model.logits(model.hidden(ids, null, null)).toFloatArray();
            model.setProjectionHook((name, x) -> name.equals(module) ? x.matMul(delta.transpose()) : null);
            float[] hooked = model.logits(model.hidden(ids, null, null)).toFloatArray();
            model.setProjectionHook(null);
            model.parameters().get(module + ".weight").addi(delta);
            float[] changed = model.logits(model.hidden(ids, null, null)).toFloatArray();
            assertTrue(maxDiff(plain, hooked) > 1e-3, "the hook changed nothing");
            assertTrue(maxDiff(hooked, changed) < 1e-5, "hook delta differs from the changed weight: " + maxDiff(hooked, changed));
        }
    }

    @Test
    void gradientsReachTheParametersAndMatchFiniteDifferences() throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), BASE.withModelType("qwen3"), 13, CHARS);
        String name = "model.layers.0.self_attn.q_proj.weight";
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); NDManager m = NDManager.newBaseManager()) {
            NDArray ids = m.create(new long[][] {{1, 2, 3, 4, 5}, {6, 7, 8, 0, 0}});
            NDArray mask = m.create(new long[][] {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}});
            NDArray weighting = m.randomNormal(new Shape(2, 5, BASE.vocabSize()));
            NDArray w = model.parameters().get(name);
            w.setRequiresGradient(true);
            float[] grad;
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray loss = model.logits(model.hidden(ids, mask, null)).mul(weighting).sum();
                gc.backward(loss);
                try (NDArray g = w.getGradient()) {
                    grad = g.toFloatArray();
                }
            }
            w.setRequiresGradient(false);
            // central differences in double precision would be best; float32 with a large step is enough to catch a cut graph
            int[] probe = {0, 37, 250, 1000};
            for (int idx : probe) {
                float eps = 1e-2f;
                double up = lossWith(model, ids, mask, weighting, w, idx, eps);
                double down = lossWith(model, ids, mask, weighting, w, idx, -eps);
                double numeric = (up - down) / (2 * eps);
                assertEquals(numeric, grad[idx], 2e-2 * Math.max(1, Math.abs(numeric)), "gradient of element " + idx);
            }
            assertTrue(maxAbs(grad) > 1e-3, "gradient is zero");
        }
    }

    private static double lossWith(LlamaModel model, NDArray ids, NDArray mask, NDArray weighting, NDArray w, int idx, float step) {
        float[] values = w.toFloatArray();
        float original = values[idx];
        values[idx] = original + step;
        w.set(values);
        double loss = model.logits(model.hidden(ids, mask, null)).mul(weighting).sum().getFloat();
        values[idx] = original;
        w.set(values);
        return loss;
    }

    @Test
    void loadWithoutADeviceUsesTheEnginesDefault() throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), BASE, 2, CHARS);
        try (LlamaModel model = LlamaModel.load(dir)) {
            Device expected = Engine.getInstance().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
            assertEquals(expected, model.manager().getDevice());
            assertEquals(expected, model.parameters().get("model.norm.weight").getDevice());
        }
    }

    @Test
    void parametersAreTheArraysForwardUses() throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), BASE, 2, CHARS);
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); NDManager m = NDManager.newBaseManager()) {
            assertEquals(LlamaModel.expectedShapes(BASE).keySet(), model.parameters().keySet());
            NDArray ids = m.create(new long[][] {{1, 2, 3}});
            float[] before = model.logits(model.hidden(ids, null, null)).toFloatArray();
            model.parameters().get("lm_head.weight").muli(2);
            float[] after = model.logits(model.hidden(ids, null, null)).toFloatArray();
            for (int i = 0; i < before.length; i++) assertEquals(2 * before[i], after[i], 1e-5);
        }
    }

    @Test
    void nativeMemoryStaysFlatInsideScopes() throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), BASE, 2, CHARS);
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); NDManager m = NDManager.newBaseManager()) {
            NDArray ids = m.create(new long[][] {{1, 2, 3, 4, 5, 6, 7, 8}});
            int before = countArrays(model.manager());
            for (int i = 0; i < 20; i++) {
                try (NDScope scope = new NDScope()) {
                    model.logits(model.hidden(ids, null, null)).sum().getFloat();
                }
            }
            assertEquals(before + 2, countArrays(model.manager()), "only the two rotary tables may be added");
        }
    }

    private static int countArrays(NDManager manager) {
        return manager.getManagedArrays().size();
    }

    @Test
    void missingOrMisshapenTensorsAreNamed() throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), BASE, 1, CHARS);
        Path file = dir.resolve("model.safetensors");
        try (NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> weights = new HashMap<>();
            Safetensors.read(file).forEach((k, t) -> weights.put(k, t.toNDArray(m)));
            weights.remove("model.layers.1.mlp.up_proj.weight");
            Safetensors.write(file, weights, Map.of());
            var missing = assertThrows(IllegalArgumentException.class, () -> LlamaModel.load(dir, Device.cpu()));
            assertTrue(missing.getMessage().contains("model.layers.1.mlp.up_proj.weight"), missing.getMessage());

            weights.put("model.layers.1.mlp.up_proj.weight", m.zeros(new Shape(63, 32)));
            Safetensors.write(file, weights, Map.of());
            var misshapen = assertThrows(IllegalArgumentException.class, () -> LlamaModel.load(dir, Device.cpu()));
            assertTrue(misshapen.getMessage().contains("model.layers.1.mlp.up_proj.weight")
                    && misshapen.getMessage().contains("(63, 32)"), misshapen.getMessage());
        }
    }

    @Test
    void shardedCheckpointsLoadLikeASingleFile() throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), BASE, 4, CHARS);
        Path sharded = Files.createDirectories(tmp.resolve("sharded"));
        Files.copy(dir.resolve("config.json"), sharded.resolve("config.json"));
        try (NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> first = new HashMap<>();
            Map<String, NDArray> second = new HashMap<>();
            StringBuilder index = new StringBuilder("{\"metadata\":{},\"weight_map\":{");
            Safetensors.read(dir.resolve("model.safetensors")).forEach((k, t) -> {
                boolean late = k.startsWith("model.layers.1") || k.startsWith("lm_head") || k.startsWith("model.norm");
                (late ? second : first).put(k, t.toNDArray(m));
                index.append('"').append(k).append("\":\"model-0000").append(late ? 2 : 1).append("-of-00002.safetensors\",");
            });
            index.setLength(index.length() - 1);
            index.append("}}");
            Safetensors.write(sharded.resolve("model-00001-of-00002.safetensors"), first, Map.of(), Safetensors.StoredType.BF16);
            Safetensors.write(sharded.resolve("model-00002-of-00002.safetensors"), second, Map.of(), Safetensors.StoredType.BF16);
            Files.writeString(sharded.resolve("model.safetensors.index.json"), index);
        }
        long[] ids = {1, 2, 3, 4};
        try (LlamaModel a = LlamaModel.load(dir, Device.cpu()); LlamaModel b = LlamaModel.load(sharded, Device.cpu());
             NDManager m = NDManager.newBaseManager()) {
            float[] full = a.logits(a.hidden(m.create(new long[][] {ids}), null, null)).toFloatArray();
            float[] bf16 = b.logits(b.hidden(m.create(new long[][] {ids}), null, null)).toFloatArray();
            // bf16 keeps 8 bits of mantissa: the logits agree to bf16 precision, and not exactly
            double diff = maxDiff(full, bf16);
            assertTrue(diff < 0.05 * maxAbs(full) && diff > 0, "bf16 shard logits differ by " + diff);
        }
    }

    @Test
    void saveWritesACheckpointThatLoadsBackIdentically() throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), BASE.withModelType("qwen2"), 4, CHARS);
        Path saved = tmp.resolve("saved");
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu())) {
            model.parameters().get("model.norm.weight").muli(3);
            model.save(saved);
            try (LlamaModel back = LlamaModel.load(saved, Device.cpu())) {
                assertEquals(model.config(), back.config());
                for (var e : model.parameters().entrySet()) {
                    assertArrayEquals(e.getValue().toFloatArray(), back.parameters().get(e.getKey()).toFloatArray(), e.getKey());
                }
            }
        }
    }

    static void assertClose(double[][] expected, float[] actual, double tol) {
        int v = expected[0].length;
        assertEquals(expected.length * v, actual.length, "logit count");
        double worst = 0, largest = 0;
        for (int i = 0; i < expected.length; i++) {
            for (int j = 0; j < v; j++) {
                worst = Math.max(worst, Math.abs(expected[i][j] - actual[i * v + j]));
                largest = Math.max(largest, Math.abs(expected[i][j]));
            }
        }
        assertTrue(worst < tol, "max |logit difference| " + worst + " exceeds " + tol);
        // Closeness means something only when the logits are far from zero, measured in tolerances.
        assertTrue(largest > 1000 * tol, "the reference logits are all near zero (max |logit| " + largest + ")");
    }

    static double maxDiff(float[] a, float[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
        return d;
    }

    static double maxAbs(float[] a) {
        double d = 0;
        for (float x : a) d = Math.max(d, Math.abs(x));
        return d;
    }

    /**
     * Replaces norm weights and biases by seeded noise so that each one visibly matters, and
     * sharpens q/k: with the 0.02 init attention is nearly uniform and positions would hardly count.
     */
    static void randomizeNormsAndBiases(Path dir, long seed) {
        Path file = dir.resolve("model.safetensors");
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        try (NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> weights = new HashMap<>();
            Safetensors.read(file).forEach((k, t) -> {
                float[] v = t.toFloatArray();
                if (k.endsWith("norm.weight") || k.endsWith(".bias")) {
                    for (int i = 0; i < v.length; i++) v[i] = (float) ((k.endsWith(".bias") ? 0 : 1) + 0.5 * (r.nextDouble() - 0.5));
                }
                if (k.contains("q_proj") || k.contains("k_proj")) {
                    for (int i = 0; i < v.length; i++) v[i] *= 15;
                }
                weights.put(k, m.create(v, t.djlShape()));
            });
            Safetensors.write(file, weights, Map.of());
        }
    }

    @Test
    void aTensorLargerThanALoadBlockIsFilledRowsAtATimeToTheSameValues() {
        Path dir = Path.of("models/demo");
        long saved = LlamaModel.loadBlockBytes;
        try (LlamaModel whole = LlamaModel.load(dir, Device.cpu())) {
            // the embedding (rows of 256 bytes) then loads two rows at a time, the MLP's [64, 192] (768) a row at a time
            LlamaModel.loadBlockBytes = 700;
            try (LlamaModel blocks = LlamaModel.load(dir, Device.cpu())) {
                for (Map.Entry<String, NDArray> e : whole.parameters().entrySet()) {
                    NDArray b = blocks.parameters().get(e.getKey());
                    assertEquals(e.getValue().getShape(), b.getShape(), e.getKey());
                    assertArrayEquals(e.getValue().toFloatArray(), b.toFloatArray(), e.getKey());
                }
            }
        } finally {
            LlamaModel.loadBlockBytes = saved;
        }
    }
}
