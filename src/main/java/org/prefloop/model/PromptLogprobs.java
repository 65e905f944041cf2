package org.prefloop.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.jni.JniUtils;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/**
 * The log-probability the model gives each token of a text after the tokens before it: what
 * judges and scoring scripts read through {@code /v1/completions} with {@code echo}. The text
 * goes through the model a chunk at a time into a KV cache of its own (the same computation as
 * one pass), so that a caller sharing the model with a decode batch can hold it one chunk at a
 * time, and the logits (vocabulary-wide per position) of one chunk are all that is ever held.
 * The numbers are those {@link Sampling#logprobs} gives a generated token, so a scored text and a
 * generated one agree.
 */
public final class PromptLogprobs {
    static final int CHUNK = 128;

    private PromptLogprobs() {
    }

    /** {@link #score(LlamaModel, long[], int, Consumer)} for a caller that has the model to itself. */
    public static List<TokenLogprobs> score(LlamaModel model, long[] ids, int top) {
        return score(model, ids, top, Runnable::run);
    }

    /**
     * Entry i is of token i + 1 given tokens 0..i (the first token has no prefix to be scored on),
     * with {@code top} alternatives. {@code around} runs each chunk's forward pass: a caller that
     * shares the model takes its lock there (and sets the projection hook it wants).
     */
    public static List<TokenLogprobs> score(LlamaModel model, long[] ids, int top, Consumer<Runnable> around) {
        if (ids.length == 0) throw new IllegalArgumentException("nothing to score");
        int vocab = model.config().vocabSize();
        for (long id : ids) if (id < 0 || id >= vocab) throw new IllegalArgumentException("token id " + id + " is outside the vocabulary");
        List<TokenLogprobs> out = new ArrayList<>();
        int scored = ids.length - 1; // the last token predicts past the text: it is never an input
        if (scored == 0) return out;
        try (KvCache cache = model.newCache(1, scored)) {
            for (int from = 0; from < scored; from += CHUNK) {
                int start = from;
                int end = Math.min(scored, from + CHUNK);
                around.accept(() -> chunk(model, ids, start, end, top, cache, out));
            }
        }
        return out;
    }

    /** Feeds ids[from..to) after the cached ones and scores ids[from+1..to]. */
    private static void chunk(LlamaModel model, long[] ids, int from, int to, int top, KvCache cache, List<TokenLogprobs> out) {
        boolean wasGrad = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try (NDManager manager = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            NDArray hidden = model.hidden(manager.create(new long[][]{Arrays.copyOfRange(ids, from, to)}), null, cache);
            float[] logits = model.logits(hidden).toType(DataType.FLOAT32, false).toFloatArray();
            int width = logits.length / (to - from);
            for (int p = from; p < to; p++) {
                float[] row = Arrays.copyOfRange(logits, (p - from) * width, (p - from + 1) * width);
                out.add(Sampling.logprobs(row, ids[p + 1], top));
            }
        } finally {
            JniUtils.setGradMode(wasGrad);
        }
    }
}
