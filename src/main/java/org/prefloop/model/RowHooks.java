package org.prefloop.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The projection hook of one forward pass over a batch whose row i runs its own hook (S-LoRA and
 * Punica's serving of many adapters over one base): the base projection runs once for the whole
 * batch and each row gets its own adapter's delta (none for rows on the base). Three forms:
 * <ul>
 * <li>every row on one hook (or none): that hook itself, at no extra cost;</li>
 * <li>rows on several {@link LowRankHook}s (what serving loads): their stacked factors
 *     ({@link LowRankStacks}), three engine calls per projection however many adapters mix:
 *     {@code ((x · down) ⊙ rowMask) · up};</li>
 * <li>any other hooks: each hook's delta on the rows that use it (gathered), the deltas put back
 *     in row order.</li>
 * </ul>
 * Close it after the forward pass: it holds the stack it leased.
 */
final class RowHooks implements AutoCloseable {
    private final ProjectionHook hook;
    private final LowRankStacks stacks;
    private final LowRankStacks.Stack leased;

    private RowHooks(ProjectionHook hook, LowRankStacks stacks, LowRankStacks.Stack leased) {
        this.hook = hook;
        this.stacks = stacks;
        this.leased = leased;
    }

    /**
     * The hook for a batch whose row i runs {@code perRow.get(i)} (null: no adapter). Per-step
     * arrays (row masks, indices) are created in {@code manager}, which must outlive the forward pass.
     */
    static RowHooks of(List<ProjectionHook> perRow, NDManager manager, LowRankStacks stacks) {
        if (perRow.isEmpty()) return new RowHooks(null, null, null);
        ProjectionHook first = perRow.get(0);
        boolean same = true;
        boolean lowRank = true;
        Set<LowRankHook> distinct = new LinkedHashSet<>();
        for (ProjectionHook h : perRow) {
            same &= h == first;
            if (h instanceof LowRankHook l) distinct.add(l);
            else lowRank &= h == null;
        }
        if (same) return new RowHooks(first, null, null);
        if (!lowRank) return new RowHooks(new Grouped(perRow, manager), null, null);
        LowRankStacks.Stack stack = stacks.lease(List.copyOf(distinct));
        try {
            return new RowHooks(new Stacked(stack, perRow, manager), stacks, stack);
        } catch (RuntimeException e) {
            stacks.release(stack);
            throw e;
        }
    }

    /** What the forward pass runs (null: no row has a hook). */
    ProjectionHook hook() {
        return hook;
    }

    @Override
    public void close() {
        if (leased != null) stacks.release(leased);
    }

    /** Rows on several low-rank hooks: one pass over the stacked factors, each row masked to its own. */
    private static final class Stacked implements ProjectionHook {
        private final LowRankStacks.Stack stack;
        private final Map<LowRankStacks.Layout, NDArray> masks = new HashMap<>(); // [rows, 1, width]

        Stacked(LowRankStacks.Stack stack, List<ProjectionHook> perRow, NDManager manager) {
            this.stack = stack;
            int rows = perRow.size();
            int[] slot = new int[rows];
            for (int i = 0; i < rows; i++) slot[i] = perRow.get(i) == null ? -1 : stack.slot((LowRankHook) perRow.get(i));
            for (LowRankStacks.Layout layout : stack.layouts()) {
                int width = layout.width();
                float[] mask = new float[rows * width];
                for (int i = 0; i < rows; i++) {
                    int s = slot[i];
                    if (s < 0) continue;
                    Arrays.fill(mask, i * width + layout.offset()[s], i * width + layout.offset()[s] + layout.rank().get(s), 1f);
                }
                masks.put(layout, manager.create(mask, new Shape(rows, 1, width)));
            }
        }

        /** {@code input} is [rows, tokens, in], as the model's projections are. */
        @Override
        public NDArray delta(String module, NDArray input) {
            LowRankStacks.Module m = stack.module(module);
            if (m == null) return null;
            return input.matMul(m.down()).mul(masks.get(m.layout())).matMul(m.up());
        }
    }

    /** Any hooks: each group of rows on one hook computes its delta on its rows alone. */
    private static final class Grouped implements ProjectionHook {
        private final List<ProjectionHook> hooks = new ArrayList<>(); // one per group; null for rows without adapter
        private final List<NDArray> groupRows = new ArrayList<>();    // int64 row indices of each group
        private final int[] groupSizes;
        private final NDArray restore; // inverse permutation from group order back to row order; null when already in order

        Grouped(List<ProjectionHook> perRow, NDManager manager) {
            int rows = perRow.size();
            Map<ProjectionHook, List<Integer>> byHook = new IdentityHashMap<>();
            List<Integer> plain = new ArrayList<>();
            List<ProjectionHook> order = new ArrayList<>();
            for (int i = 0; i < rows; i++) {
                ProjectionHook h = perRow.get(i);
                if (h == null) {
                    plain.add(i);
                    continue;
                }
                byHook.computeIfAbsent(h, k -> {
                    order.add(k);
                    return new ArrayList<>();
                }).add(i);
            }
            if (!plain.isEmpty()) order.add(null);
            groupSizes = new int[order.size()];
            long[] permutation = new long[rows];
            int at = 0;
            for (int g = 0; g < order.size(); g++) {
                ProjectionHook h = order.get(g);
                List<Integer> members = h == null ? plain : byHook.get(h);
                hooks.add(h);
                groupSizes[g] = members.size();
                long[] idx = members.stream().mapToLong(Integer::longValue).toArray();
                groupRows.add(manager.create(idx));
                for (long r : idx) permutation[(int) r] = at++;
            }
            boolean inOrder = true;
            for (int i = 0; i < rows; i++) inOrder &= permutation[i] == i;
            restore = inOrder ? null : manager.create(permutation);
        }

        @Override
        public NDArray delta(String module, NDArray input) {
            NDArray[] parts = new NDArray[hooks.size()];
            NDArray template = null;
            for (int g = 0; g < hooks.size(); g++) {
                ProjectionHook h = hooks.get(g);
                if (h == null) continue;
                NDArray d = h.delta(module, input.get(new NDIndex("{}", groupRows.get(g))));
                parts[g] = d;
                if (d != null) template = d;
            }
            if (template == null) return null; // no group's adapter touches this module
            long[] shape = template.getShape().getShape();
            for (int g = 0; g < parts.length; g++) {
                if (parts[g] != null) continue;
                long[] s = Arrays.copyOf(shape, shape.length);
                s[0] = groupSizes[g];
                parts[g] = template.getManager().zeros(new Shape(s), template.getDataType());
            }
            NDArray grouped = parts.length == 1 ? parts[0] : NDArrays.concat(new NDList(parts), 0);
            return restore == null ? grouped : grouped.get(new NDIndex("{}", restore));
        }
    }
}
