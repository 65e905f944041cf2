package org.prefloop.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import org.prefloop.model.LlamaModel;

import java.util.Arrays;
import java.util.List;

/**
 * The summed log-probability of each sequence's scored tokens: the quantity DPO compares and SFT
 * maximises. Sequences are right-padded into one batch; only positions whose target token is
 * scored count (a completion, every assistant turn of a conversation, or every token of a
 * plain-text document).
 */
public final class SequenceLogProbs {
    private SequenceLogProbs() {
    }

    /** Token ids and, per token, whether the loss covers it (the first token never can: nothing predicts it). */
    public record Sequence(long[] ids, boolean[] scored) {
        public Sequence {
            if (ids.length != scored.length) throw new IllegalArgumentException("ids and scored differ in length");
            if (ids.length < 2) throw new IllegalArgumentException("a sequence needs at least two tokens");
        }

        /** A prompt followed by a completion; the completion's tokens are scored. */
        public static Sequence of(long[] prompt, long[] completion) {
            long[] ids = Arrays.copyOf(prompt, prompt.length + completion.length);
            System.arraycopy(completion, 0, ids, prompt.length, completion.length);
            boolean[] scored = new boolean[ids.length];
            Arrays.fill(scored, prompt.length, ids.length, true);
            return new Sequence(ids, scored);
        }

        /** Every token but the first is scored (a plain-text document). */
        public static Sequence text(long[] ids) {
            boolean[] scored = new boolean[ids.length];
            Arrays.fill(scored, 1, ids.length, true);
            return new Sequence(ids, scored);
        }

        public int length() {
            return ids.length;
        }

        public int scoredTokens() {
            int n = 0;
            for (int j = 1; j < scored.length; j++) if (scored[j]) n++;
            return n;
        }

        /** The first {@code n} tokens. */
        public Sequence truncate(int n) {
            return n >= ids.length ? this : new Sequence(Arrays.copyOf(ids, n), Arrays.copyOf(scored, n));
        }
    }

    /**
     * Elements of vocabulary-wide scores a chunk may hold ([rows, vocab], fp32: 64 MiB), so that
     * the vocabulary never multiplies the whole batch at once. Package-private for the tests.
     */
    static long chunkElements = 1L << 24;

    /**
     * [B] summed log-probs of the scored tokens, in the current autograd graph if one is recording.
     * The batch is padded to its longest sequence. Only the positions whose next token is scored
     * reach the output projection, a chunk of rows at a time. When the projection is frozen (LoRA,
     * or no gradient at all), no vocabulary-wide array outlives its chunk: with gradients on, each
     * position's log-prob enters the graph as {@code h·g} plus a constant, where {@code g =
     * W[target] - softmax(Wh)·W} is its exact gradient with respect to the hidden state {@code h},
     * so backward sees the same gradients as through the log-softmax while the graph keeps [N, H]
     * instead of [N, vocab]. A trained projection (full fine-tuning) goes through the log-softmax.
     */
    public static NDArray of(LlamaModel model, List<Sequence> batch, NDManager scope) {
        if (JniUtils.isGradMode()) return recorded(model, batch, scope);
        // Nothing records (a reference pass, an evaluation): every array but the result dies here.
        NDArray result;
        try (NDScope pass = new NDScope()) {
            result = recorded(model, batch, scope);
            NDScope.unregister(result);
        }
        NDScope.register(result); // into the caller's scope, if any
        return result;
    }

    /**
     * The computation of {@link #of}. While gradients record, the arrays made here from Java data
     * (ids, row indices, targets, the owner matrix) stay open until the caller's scope closes: the
     * engine wraps their Java buffers without copying, and autograd may have saved them.
     */
    private static NDArray recorded(LlamaModel model, List<Sequence> batch, NDManager scope) {
        int b = batch.size();
        int t = batch.stream().mapToInt(Sequence::length).max().orElseThrow();
        long[] ids = new long[b * t];
        float[] attention = new float[b * t];
        int n = 0;
        for (Sequence s : batch) for (int j = 1; j < s.length(); j++) if (s.scored()[j]) n++;
        long[] rows = new long[Math.max(1, n)];
        long[] targets = new long[Math.max(1, n)];
        float[] owner = new float[b * Math.max(1, n)];
        int k = 0;
        for (int i = 0; i < b; i++) {
            Sequence s = batch.get(i);
            for (int j = 0; j < s.length(); j++) {
                ids[i * t + j] = s.ids()[j];
                attention[i * t + j] = 1;
            }
            // position j predicts token j+1; it counts when token j+1 is scored
            for (int j = 0; j + 1 < s.length(); j++) {
                if (!s.scored()[j + 1]) continue;
                rows[k] = (long) i * t + j;
                targets[k] = s.ids()[j + 1];
                owner[i * Math.max(1, n) + k] = 1;
                k++;
            }
        }
        NDArray input = scope.create(ids, new Shape(b, t));
        NDArray mask = scope.create(attention, new Shape(b, t));
        NDArray hidden = model.hidden(input, mask, null);
        if (n == 0) return hidden.sum(new int[]{1, 2}).mul(0f);
        long h = hidden.getShape().get(2);
        NDArray flat = hidden.reshape(-1, h);
        NDArray head = model.config().tieWordEmbeddings() ? model.parameters().get("model.embed_tokens.weight") : model.parameters().get("lm_head.weight");
        long vocab = head.getShape().get(0);
        int chunk = (int) Math.max(1, Math.min(n, chunkElements / vocab));
        boolean surrogate = JniUtils.isGradMode() && !head.hasGradient();
        NDArray[] parts = new NDArray[(n + chunk - 1) / chunk];
        for (int c = 0, p = 0; c < n; c += chunk, p++) {
            int len = Math.min(chunk, n - c);
            NDArray rowIdx = scope.create(Arrays.copyOfRange(rows, c, c + len), new Shape(len, 1));
            NDArray target = scope.create(Arrays.copyOfRange(targets, c, c + len), new Shape(len, 1));
            NDArray hc = flat.gather(rowIdx.broadcast(len, h), 0);
            parts[p] = surrogate ? throughGradient(model, head, hc, target) : throughLogSoftmax(model, hc, target);
        }
        NDArray logps = parts.length == 1 ? parts[0] : NDArrays.concat(new NDList(parts), 0);
        // [B, N] x [N]: each sequence's sum of its own positions
        return scope.create(owner, new Shape(b, n)).matMul(logps.reshape(n, 1)).reshape(b);
    }

    /** [len] log-probs of the targets through the log-softmax (the projection may be trained); only the result outlives the chunk's scope. */
    private static NDArray throughLogSoftmax(LlamaModel model, NDArray hc, NDArray target) {
        // With gradients the logits die with the chunk too: autograd keeps the log-softmax it saved.
        try (NDScope chunk = new NDScope()) {
            NDArray lp = model.logits(hc).logSoftmax(-1).gather(target, -1).squeeze(-1);
            NDScope.unregister(lp);
            return lp;
        }
    }

    /**
     * [len] log-probs of the targets for a frozen projection W while gradients record: the values
     * and g = W[target] - softmax(W h)·W computed with gradients off, chunk-local, then
     * {@code h·g - sg(h·g) + value}, whose value is the log-prob and whose gradient in h is g.
     */
    private static NDArray throughGradient(LlamaModel model, NDArray head, NDArray hc, NDArray target) {
        NDArray value, g;
        JniUtils.setGradMode(false);
        try (NDScope chunk = new NDScope()) {
            NDArray logp = model.logits(hc.stopGradient()).logSoftmax(-1);
            value = logp.gather(target, -1).squeeze(-1);
            long h = head.getShape().get(1);
            g = head.gather(target.broadcast(target.getShape().get(0), h), 0).sub(logp.exp().matMul(head));
            NDScope.unregister(value, g);
        } finally {
            JniUtils.setGradMode(true);
        }
        NDArray dot = hc.mul(g).sum(new int[]{1});
        return dot.sub(dot.stopGradient()).add(value);
    }
}
