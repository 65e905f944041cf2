package org.prefloop.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
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

    /** [B] summed log-probs of the scored tokens, in the current autograd graph if one is recording. */
    public static NDArray of(LlamaModel model, List<Sequence> batch, NDManager scope) {
        int b = batch.size();
        int t = batch.stream().mapToInt(Sequence::length).max().orElseThrow();
        long[] ids = new long[b * t];
        float[] attention = new float[b * t];
        float[] counts = new float[b * (t - 1)];
        long[] targets = new long[b * (t - 1)];
        for (int i = 0; i < b; i++) {
            Sequence s = batch.get(i);
            for (int j = 0; j < s.length(); j++) {
                ids[i * t + j] = s.ids()[j];
                attention[i * t + j] = 1;
            }
            // position j predicts token j+1; it counts when token j+1 is scored
            for (int j = 0; j + 1 < t; j++) {
                targets[i * (t - 1) + j] = ids[i * t + j + 1];
                if (j + 1 < s.length() && s.scored()[j + 1]) counts[i * (t - 1) + j] = 1;
            }
        }
        NDArray input = scope.create(ids, new Shape(b, t));
        NDArray mask = scope.create(attention, new Shape(b, t));
        NDArray hidden = model.hidden(input, mask, null).get(new NDIndex(":, :-1"));
        NDArray logp = model.logits(hidden).logSoftmax(-1);
        NDArray target = scope.create(targets, new Shape(b, t - 1, 1));
        NDArray picked = logp.gather(target, -1).squeeze(-1);
        return picked.mul(scope.create(counts, new Shape(b, t - 1))).sum(new int[]{1});
    }
}
