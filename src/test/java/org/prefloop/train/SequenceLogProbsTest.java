package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.TinyCheckpoint;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Log-probs at scored positions only, in chunks, give the values and gradients of the log-softmax
 * over every position of the padded batch (the previous path, kept here as the reference): LoRA
 * (the frozen output projection's gradient shortcut) and full fine-tuning, gradients on and off.
 */
class SequenceLogProbsTest {
    static final long DEFAULT_CHUNK = SequenceLogProbs.chunkElements;

    @AfterEach
    void restore() {
        SequenceLogProbs.chunkElements = DEFAULT_CHUNK;
    }

    /** The previous implementation: the log-softmax over the vocabulary at every position of the padded batch. */
    static NDArray everyPosition(LlamaModel model, List<SequenceLogProbs.Sequence> batch, NDManager scope) {
        int b = batch.size();
        int t = batch.stream().mapToInt(SequenceLogProbs.Sequence::length).max().orElseThrow();
        long[] ids = new long[b * t];
        float[] attention = new float[b * t];
        float[] counts = new float[b * (t - 1)];
        long[] targets = new long[b * (t - 1)];
        for (int i = 0; i < b; i++) {
            SequenceLogProbs.Sequence s = batch.get(i);
            for (int j = 0; j < s.length(); j++) {
                ids[i * t + j] = s.ids()[j];
                attention[i * t + j] = 1;
            }
            for (int j = 0; j + 1 < t; j++) {
                targets[i * (t - 1) + j] = ids[i * t + j + 1];
                if (j + 1 < s.length() && s.scored()[j + 1]) counts[i * (t - 1) + j] = 1;
            }
        }
        NDArray hidden = model.hidden(scope.create(ids, new Shape(b, t)), scope.create(attention, new Shape(b, t)), null).get(new NDIndex(":, :-1"));
        NDArray logp = model.logits(hidden).logSoftmax(-1);
        NDArray picked = logp.gather(scope.create(targets, new Shape(b, t - 1, 1)), -1).squeeze(-1);
        return picked.mul(scope.create(counts, new Shape(b, t - 1))).sum(new int[]{1});
    }

    static List<SequenceLogProbs.Sequence> batch() {
        boolean[] turns = new boolean[12];
        for (int j : new int[]{3, 4, 5, 9, 10}) turns[j] = true;
        return List.of(
                SequenceLogProbs.Sequence.of(new long[]{3, 4, 5, 6}, new long[]{7, 8, 9}),
                SequenceLogProbs.Sequence.of(new long[]{10, 11}, new long[]{12, 13, 14, 15, 16, 17, 18}),
                new SequenceLogProbs.Sequence(new long[]{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, turns),
                SequenceLogProbs.Sequence.text(new long[]{20, 21, 22, 23, 24}));
    }

    /** Values and gradients (per parameter) of sum_i w_i * logp_i by {@code f}. */
    static Map<String, float[]> gradients(LlamaModel model, Map<String, NDArray> params, float[] values,
                                          BiFunction<NDManager, List<SequenceLogProbs.Sequence>, NDArray> f) {
        Map<String, float[]> out = new LinkedHashMap<>();
        try (NDManager scope = model.manager().newSubManager(); GradientCollector c = Engine.getInstance().newGradientCollector()) {
            NDArray lp = f.apply(scope, batch());
            System.arraycopy(lp.toFloatArray(), 0, values, 0, values.length);
            c.backward(lp.mul(scope.create(new float[]{1f, -0.5f, 2f, 0.25f})).sum());
            params.forEach((k, p) -> out.put(k, p.getGradient().toFloatArray()));
        }
        JniUtils.setGradMode(false);
        params.values().forEach(p -> p.getGradient().muli(0f)); // gradients accumulate otherwise
        return out;
    }

    static void assertSame(Map<String, float[]> expected, Map<String, float[]> actual) {
        for (String k : expected.keySet()) {
            float[] e = expected.get(k), a = actual.get(k);
            double scale = 0;
            for (float x : e) scale = Math.max(scale, Math.abs(x));
            assertTrue(scale > 0, k + " has a gradient");
            for (int i = 0; i < e.length; i++) assertEquals(e[i], a[i], 1e-5 + 1e-4 * scale, k + "[" + i + "]");
        }
    }

    @Test
    void scoredPositionsInChunksGiveTheSameValuesAndGradients(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), DpoTrainerTest.CONFIG, 3, DpoTrainerTest.CHARS);
        SequenceLogProbs.chunkElements = 3L * DpoTrainerTest.CONFIG.vocabSize(); // chunks of 3 positions
        try (LlamaModel model = LlamaModel.load(ckpt)) {
            // LoRA: the output projection is frozen, so the gradient shortcut runs
            LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(4, 8, List.of("q_proj", "v_proj", "down_proj"), null), 9, true);
            Trainable lora = Trainable.lora(adapter);
            model.setProjectionHook(adapter.hook());
            float[] old = new float[4], now = new float[4];
            Map<String, float[]> expected = gradients(model, lora.parameters(), old, (s, b) -> everyPosition(model, b, s));
            Map<String, float[]> actual = gradients(model, lora.parameters(), now, (s, b) -> SequenceLogProbs.of(model, b, s));
            for (int i = 0; i < 4; i++) assertEquals(old[i], now[i], 1e-4, "log-prob of sequence " + i);
            assertSame(expected, actual);
            model.setProjectionHook(null);
            lora.parameters().values().forEach(p -> p.setRequiresGradient(false));
            adapter.close();

            // full fine-tuning: the output projection trains, through the log-softmax
            Trainable full = Trainable.full(model);
            expected = gradients(model, full.parameters(), old, (s, b) -> everyPosition(model, b, s));
            actual = gradients(model, full.parameters(), now, (s, b) -> SequenceLogProbs.of(model, b, s));
            for (int i = 0; i < 4; i++) assertEquals(old[i], now[i], 1e-4, "log-prob of sequence " + i);
            assertSame(expected, actual);

            // gradients off (reference log-probs, evaluation)
            JniUtils.setGradMode(false);
            try (NDManager scope = model.manager().newSubManager()) {
                float[] a = everyPosition(model, batch(), scope).toFloatArray(), b = SequenceLogProbs.of(model, batch(), scope).toFloatArray();
                for (int i = 0; i < 4; i++) assertEquals(a[i], b[i], 1e-4, "log-prob of sequence " + i + " without gradients");
            }
        }
    }
}
