package org.prefloop.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import org.prefloop.model.LlamaModel;

import java.util.List;

/**
 * The summed log-probability of each sequence's completion tokens: the quantity DPO compares
 * and SFT maximises. Sequences are right-padded into one batch; only positions whose target
 * token belongs to the completion count.
 */
public final class SequenceLogProbs {
    private SequenceLogProbs() {
    }

    /** A prompt followed by a completion, as token ids. */
    public record Sequence(long[] prompt, long[] completion) {
        int length() {
            return prompt.length + completion.length;
        }
    }

    /** [B] summed log-probs of the completions, in the current autograd graph if one is recording. */
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
                ids[i * t + j] = j < s.prompt().length ? s.prompt()[j] : s.completion()[j - s.prompt().length];
                attention[i * t + j] = 1;
            }
            // position j predicts token j+1; it counts when token j+1 is a completion token
            for (int j = 0; j + 1 < t; j++) {
                targets[i * (t - 1) + j] = ids[i * t + j + 1];
                if (j + 1 >= s.prompt().length && j + 1 < s.length()) counts[i * (t - 1) + j] = 1;
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
