package org.prefloop.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.jni.JniUtils;

import java.util.ArrayList;
import java.util.List;

/**
 * The log-probability the model gives each token of a text after the tokens before it: what
 * judges and scoring scripts read through {@code /v1/completions} with {@code echo}. One forward
 * pass over the whole text; the logits (vocabulary-wide per position) are taken a slice of
 * positions at a time so a long text never holds them all. The numbers are those
 * {@link Sampling#logprobs} gives a generated token, so a scored text and a generated one agree.
 * The caller holds the model for the call (its projection hook is whatever is set).
 */
public final class PromptLogprobs {
    private static final int POSITIONS_PER_SLICE = 64;

    private PromptLogprobs() {
    }

    /** Entry i is of token i + 1 given tokens 0..i (the first token has no prefix to be scored on), with {@code top} alternatives. */
    public static List<TokenLogprobs> score(LlamaModel model, long[] ids, int top) {
        if (ids.length == 0) throw new IllegalArgumentException("nothing to score");
        int vocab = model.config().vocabSize();
        for (long id : ids) if (id < 0 || id >= vocab) throw new IllegalArgumentException("token id " + id + " is outside the vocabulary");
        List<TokenLogprobs> out = new ArrayList<>();
        if (ids.length == 1) return out;
        boolean wasGrad = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try (NDManager manager = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            NDArray hidden = model.hidden(manager.create(new long[][]{ids}), null, null); // [1, T, H]
            int scored = ids.length - 1; // the last position predicts past the text
            for (int from = 0; from < scored; from += POSITIONS_PER_SLICE) {
                int to = Math.min(scored, from + POSITIONS_PER_SLICE);
                float[] logits;
                try (NDScope slice = new NDScope()) {
                    logits = model.logits(hidden.get(new NDIndex("0, {}:{}, :", from, to))).toType(DataType.FLOAT32, false).toFloatArray();
                }
                int width = logits.length / (to - from);
                for (int p = from; p < to; p++) {
                    float[] row = java.util.Arrays.copyOfRange(logits, (p - from) * width, (p - from + 1) * width);
                    out.add(Sampling.logprobs(row, ids[p + 1], top));
                }
            }
        } finally {
            JniUtils.setGradMode(wasGrad);
        }
        return out;
    }
}
