package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * Stacked low-rank factors: a batch mixing hooks of different ranks and target modules gives each
 * row its own hook's delta (and the base rows none), stacks are built once per set of hooks and
 * reused, and a closed hook's stacks are dropped.
 */
class LowRankStacksTest {
    static final int IN = 12;
    static final int OUT = 10;

    /** A hook with random factors of rank {@code r} on {@code modules}. */
    static LowRankHook hook(NDManager manager, long seed, int r, float scaling, String... modules) {
        Random rnd = new Random(seed);
        Map<String, NDArray[]> weights = new TreeMap<>();
        for (String m : modules) {
            weights.put(m, new NDArray[] {manager.create(random(rnd, r * IN), new Shape(r, IN)), manager.create(random(rnd, OUT * r), new Shape(OUT, r))});
        }
        return LowRankHook.of(weights, scaling, manager);
    }

    static float[] random(Random rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = rnd.nextFloat() * 2 - 1;
        return v;
    }

    @Test
    void eachRowOfAMixedBatchGetsItsOwnHooksDeltaThroughTheStackedFactors() {
        try (NDManager manager = NDManager.newBaseManager()) {
            LowRankHook a = hook(manager, 1, 4, 2f, "q", "v");
            LowRankHook b = hook(manager, 2, 8, 0.5f, "q");
            LowRankHook c = hook(manager, 3, 1, 3f, "v", "o");
            List<ProjectionHook> perRow = Arrays.asList(c, null, a, b, a, null, c);
            NDArray x = manager.randomUniform(-1, 1, new Shape(perRow.size(), 3, IN)); // a prefill's shape: rows, tokens, in
            LowRankStacks stacks = new LowRankStacks(manager);
            try (RowHooks rows = RowHooks.of(perRow, manager, stacks)) {
                for (String module : List.of("q", "v", "o")) {
                    NDArray mixed = rows.hook().delta(module, x);
                    for (int i = 0; i < perRow.size(); i++) {
                        NDArray row = mixed.get(new NDIndex("{}:{}", i, i + 1));
                        ProjectionHook own = perRow.get(i);
                        NDArray alone = own == null ? null : own.delta(module, x.get(new NDIndex("{}:{}", i, i + 1)));
                        if (alone == null) {
                            assertEquals(0f, row.abs().max().getFloat(), module + " row " + i + " gets no delta");
                        } else {
                            float diff = row.sub(alone).abs().max().getFloat();
                            assertTrue(diff <= 1e-6f * alone.abs().max().getFloat(), module + " row " + i + " differs by " + diff);
                        }
                    }
                }
                assertNull(rows.hook().delta("k", x), "no hook targets k");
            }
            assertEquals(1, stacks.builds());
        }
    }

    @Test
    void aStackIsBuiltOncePerSetOfHooksAndDroppedWhenOneOfItsHooksCloses() {
        try (NDManager manager = NDManager.newBaseManager()) {
            LowRankHook a = hook(manager, 1, 2, 1f, "q");
            LowRankHook b = hook(manager, 2, 2, 1f, "q");
            LowRankStacks stacks = new LowRankStacks(manager);
            LowRankStacks.Stack first = stacks.lease(List.of(a, b));
            stacks.release(first);
            LowRankStacks.Stack again = stacks.lease(List.of(b, a)); // any order, the same set
            stacks.release(again);
            assertSame(first, again);
            assertEquals(1, stacks.builds());
            try (RowHooks one = RowHooks.of(Arrays.asList(a, a, a), manager, stacks)) {
                assertSame(a, one.hook(), "one hook for every row: the hook itself, no stack");
            }
            try (RowHooks two = RowHooks.of(Arrays.asList(null, b, a), manager, stacks)) {
                assertEquals(1, stacks.builds(), "the kept stack serves a new batch of the same versions");
            }
            b.close(); // evicted from the serving cache
            LowRankHook c = hook(manager, 3, 2, 1f, "q");
            stacks.release(stacks.lease(List.of(a, c)));
            assertEquals(1, stacks.size(), "the stack with the closed hook went");
            List<LowRankHook> more = new ArrayList<>();
            for (int i = 0; i < LowRankStacks.MAX_IDLE + 3; i++) {
                more.add(hook(manager, 10 + i, 2, 1f, "q"));
                stacks.release(stacks.lease(List.of(a, more.get(i))));
            }
            assertEquals(LowRankStacks.MAX_IDLE, stacks.size(), "idle stacks are bounded");
        }
    }
}
