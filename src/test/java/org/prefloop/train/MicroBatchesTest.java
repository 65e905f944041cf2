package org.prefloop.train;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Micro-batches and group_by_length's order. */
class MicroBatchesTest {

    @Test
    void aStepSplitsIntoTheAccumulationsMicroBatches() {
        List<Integer> batch = IntStream.range(0, 10).boxed().toList();
        assertEquals(List.of(List.of(0, 1, 2, 3), List.of(4, 5, 6, 7), List.of(8, 9)), MicroBatches.split(batch, 3));
    }

    @Test
    void lengthGroupingKeepsEveryExampleAndCutsPadding() {
        SplittableRandom r = new SplittableRandom(7);
        int[] lengths = IntStream.range(0, 500).map(i -> 8 + r.nextInt(500)).toArray();
        int[] shuffled = shuffled(lengths.length, r);
        int[] grouped = MicroBatches.lengthGrouped(shuffled, i -> lengths[i], 4);
        assertArrayEquals(IntStream.range(0, 500).toArray(), Arrays.stream(grouped).sorted().toArray(), "a permutation");
        assertEquals(Arrays.stream(lengths).max().orElseThrow(), lengths[grouped[0]], "the longest comes first");
        long padded = padding(shuffled, lengths, 4), groupedPadding = padding(grouped, lengths, 4);
        assertTrue(groupedPadding * 10 < padded, "padding " + groupedPadding + " tokens grouped against " + padded + " shuffled");
    }

    /** The same shuffled order through transformers' get_length_grouped_indices gives the same order. */
    @Test
    void groupsAsTransformersDoes(@TempDir Path tmp) throws Exception {
        String why = Python.missing("torch", "transformers");
        Assumptions.assumeTrue(why == null, why);
        SplittableRandom r = new SplittableRandom(11);
        int[][] cases = {{37, 2}, {500, 4}, {1000, 2}};
        List<int[]> lengths = new ArrayList<>(), orders = new ArrayList<>();
        StringBuilder py = new StringBuilder("""
                import torch
                from transformers.trainer_pt_utils import get_length_grouped_indices
                def grouped(lengths, order, batch):
                    torch.randperm = lambda n, generator=None: torch.tensor(order)  # the shuffle is the caller's
                    return get_length_grouped_indices(lengths, batch)
                """);
        for (int[] c : cases) {
            lengths.add(IntStream.range(0, c[0]).map(i -> 1 + r.nextInt(40)).toArray()); // ties, as real data has
            orders.add(shuffled(c[0], r));
            py.append("print('ORDER', *grouped([%s], [%s], %d))\n".formatted(join(lengths.getLast()), join(orders.getLast()), c[1]));
        }
        Path script = Files.writeString(tmp.resolve("group.py"), py), log = tmp.resolve("group.log");
        Python.run(List.of(script.toString()), log, 300); // one interpreter: importing transformers is the slow part
        List<String> lines = Files.readAllLines(log).stream().filter(l -> l.startsWith("ORDER ")).toList();
        assertEquals(cases.length, lines.size());
        for (int k = 0; k < cases.length; k++) {
            int[] expected = Arrays.stream(lines.get(k).substring(6).trim().split(" ")).mapToInt(Integer::parseInt).toArray();
            int[] len = lengths.get(k);
            assertArrayEquals(expected, MicroBatches.lengthGrouped(orders.get(k), i -> len[i], cases[k][1]), cases[k][0] + " examples, batch " + cases[k][1]);
        }
    }

    private static int[] shuffled(int n, SplittableRandom r) {
        List<Integer> idx = new ArrayList<>(IntStream.range(0, n).boxed().toList());
        java.util.Collections.shuffle(idx, new java.util.Random(r.nextLong()));
        return idx.stream().mapToInt(Integer::intValue).toArray();
    }

    private static long padding(int[] order, int[] lengths, int batch) {
        long pad = 0;
        for (int from = 0; from < order.length; from += batch) {
            int to = Math.min(order.length, from + batch);
            int longest = 0;
            for (int i = from; i < to; i++) longest = Math.max(longest, lengths[order[i]]);
            for (int i = from; i < to; i++) pad += longest - lengths[order[i]];
        }
        return pad;
    }

    private static String join(int[] a) {
        return Arrays.stream(a).mapToObj(String::valueOf).collect(Collectors.joining(","));
    }
}
