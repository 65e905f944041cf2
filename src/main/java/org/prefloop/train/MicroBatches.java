package org.prefloop.train;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.function.IntUnaryOperator;

/** Splits a step's batch into the micro-batches of gradient accumulation. */
final class MicroBatches {
    private MicroBatches() {
    }

    static <T> List<List<T>> split(List<T> batch, int accumulation) {
        if (accumulation < 1) throw new IllegalArgumentException("gradient_accumulation_steps must be at least 1");
        int size = Math.max(1, (batch.size() + accumulation - 1) / accumulation);
        List<List<T>> out = new ArrayList<>();
        for (int i = 0; i < batch.size(); i += size) out.add(batch.subList(i, Math.min(batch.size(), i + size)));
        return out;
    }

    /**
     * transformers' length grouping ({@code group_by_length}, its LengthGroupedSampler): an order
     * already shuffled is cut into mega-batches of {@code min(n / (4 batch), 50)} (at least one)
     * batches, each sorted longest first, and the longest example overall is swapped to the very
     * front so that a run which will not fit fails at its first step. Consecutive examples then
     * have similar lengths, so a batch padded to its longest wastes little.
     */
    static int[] lengthGrouped(int[] shuffled, IntUnaryOperator length, int batch) {
        int n = shuffled.length;
        if (n == 0) return shuffled;
        int mult = Math.max(1, Math.min(n / (batch * 4), 50));
        int mega = mult * batch;
        Integer[] out = Arrays.stream(shuffled).boxed().toArray(Integer[]::new);
        Comparator<Integer> longestFirst = Comparator.comparingInt((Integer i) -> length.applyAsInt(i)).reversed();
        int best = 0;
        for (int from = 0; from < n; from += mega) {
            Arrays.sort(out, from, Math.min(n, from + mega), longestFirst); // stable, like Python's sorted
            if (length.applyAsInt(out[from]) > length.applyAsInt(out[best])) best = from;
        }
        Integer first = out[0];
        out[0] = out[best];
        out[best] = first;
        return Arrays.stream(out).mapToInt(Integer::intValue).toArray();
    }
}
