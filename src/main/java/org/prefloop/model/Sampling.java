package org.prefloop.model;

import java.util.Arrays;
import java.util.BitSet;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Picks the next token from one row of logits: repetition penalty, frequency and presence
 * penalties, temperature, top-k, top-p, then a draw.
 */
final class Sampling {
    private Sampling() {
    }

    static long choose(float[] logits, BitSet seen, Generator.GenerationParams params, SplittableRandom random) {
        return choose(logits, seen, Map.of(), params, random);
    }

    /** {@code generated} counts each token the sequence generated so far (the prompt not included, as in OpenAI and vLLM). */
    static long choose(float[] logits, BitSet seen, Map<Integer, Integer> generated, Generator.GenerationParams params,
                       SplittableRandom random) {
        if (params.frequencyPenalty() != 0f || params.presencePenalty() != 0f) {
            for (Map.Entry<Integer, Integer> e : generated.entrySet()) {
                int id = e.getKey();
                if (id < logits.length) logits[id] -= e.getValue() * params.frequencyPenalty() + params.presencePenalty();
            }
        }
        float penalty = params.repetitionPenalty();
        if (penalty != 1f) {
            for (int id = seen.nextSetBit(0); id >= 0 && id < logits.length; id = seen.nextSetBit(id + 1)) {
                logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
            }
        }
        if (params.temperature() == 0f) return argMax(logits);
        int n = logits.length;
        if (params.topK() == 0 && params.topP() >= 1f) return drawUnsorted(logits, params.temperature(), random);
        int keep = params.topK() > 0 ? Math.min(params.topK(), n) : n;
        int[] order = keep <= SELECT_LIMIT ? largest(logits, keep) : descending(logits);
        double max = logits[order[0]];
        double[] probs = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            probs[i] = Math.exp((logits[order[i]] - max) / params.temperature());
            sum += probs[i];
        }
        // nucleus: the smallest prefix of the sorted distribution whose mass reaches topP
        if (params.topP() < 1f) {
            double cumulative = 0;
            int cut = keep;
            for (int i = 0; i < keep; i++) {
                cumulative += probs[i] / sum;
                if (cumulative >= params.topP()) {
                    cut = i + 1;
                    break;
                }
            }
            keep = cut;
            sum = 0;
            for (int i = 0; i < keep; i++) sum += probs[i];
        }
        double r = random.nextDouble() * sum;
        for (int i = 0; i < keep; i++) {
            r -= probs[i];
            if (r < 0) return order[i];
        }
        return order[keep - 1];
    }

    /**
     * Below this top-k the k largest are selected by insertion (one pass over the vocabulary);
     * above it the whole vocabulary is sorted.
     */
    static final int SELECT_LIMIT = 64;

    /**
     * Token ids by logit, largest first, ties by lower id (the order a stable sort gives), as a sort
     * of primitive keys: the logit's bits mapped to an order-preserving int, inverted for
     * descending order, above the id. A boxed sort with a comparator took milliseconds per token on a
     * 49k vocabulary, a tenth of a batch's decode step.
     */
    static int[] descending(float[] logits) {
        int n = logits.length;
        long[] keys = new long[n];
        for (int i = 0; i < n; i++) {
            int bits = Float.floatToIntBits(logits[i]);
            int ordered = bits ^ ((bits >> 31) & 0x7fffffff); // ascending with the float, -0.0 below 0.0 as Float.compare has it
            keys[i] = ((long) ~ordered << 32) | i;
        }
        Arrays.sort(keys);
        int[] order = new int[n];
        for (int i = 0; i < n; i++) order[i] = (int) keys[i];
        return order;
    }

    /** The {@code k} largest logits' ids in {@link #descending} order, by insertion into a list of k. */
    static int[] largest(float[] logits, int k) {
        int[] best = new int[k];
        int filled = 0;
        for (int i = 0; i < logits.length; i++) {
            if (filled == k && Float.compare(logits[i], logits[best[k - 1]]) <= 0) continue; // ties keep the lower id
            int at = filled < k ? filled++ : k - 1;
            while (at > 0 && Float.compare(logits[best[at - 1]], logits[i]) < 0) {
                best[at] = best[at - 1];
                at--;
            }
            best[at] = i;
        }
        return best;
    }

    /** Plain tempered sampling needs no ordering: one pass for the maximum, one for the mass, one to draw. */
    private static long drawUnsorted(float[] logits, float temperature, SplittableRandom random) {
        double max = logits[argMax(logits)];
        double[] weights = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            weights[i] = Math.exp((logits[i] - max) / temperature);
            sum += weights[i];
        }
        double r = random.nextDouble() * sum;
        for (int i = 0; i < logits.length; i++) {
            r -= weights[i];
            if (r < 0) return i;
        }
        return argMax(logits);
    }

    /**
     * Log-softmax of {@code logits} (the model's own, before the edits {@link #choose} makes) at
     * {@code chosen}, and the {@code top} most likely tokens with theirs. Double precision for the
     * normaliser; one pass over the vocabulary plus an insertion into a list of {@code top}.
     */
    static TokenLogprobs logprobs(float[] logits, long chosen, int top) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double sum = 0;
        for (float l : logits) sum += Math.exp(l - max);
        double logZ = max + Math.log(sum);
        int k = Math.min(Math.max(top, 0), logits.length);
        int[] best = new int[k];
        int filled = 0;
        for (int i = 0; i < logits.length && k > 0; i++) {
            if (filled == k && logits[i] <= logits[best[k - 1]]) continue; // not above the k-th (ties keep the lower id)
            int at = filled < k ? filled++ : k - 1;
            while (at > 0 && logits[best[at - 1]] < logits[i]) {
                best[at] = best[at - 1];
                at--;
            }
            best[at] = i;
        }
        long[] ids = new long[k];
        float[] lps = new float[k];
        for (int j = 0; j < k; j++) {
            ids[j] = best[j];
            lps[j] = (float) (logits[best[j]] - logZ);
        }
        return new TokenLogprobs(chosen, (float) (logits[(int) chosen] - logZ), ids, lps);
    }

    static int argMax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
