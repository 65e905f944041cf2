package org.prefloop.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * One projection hook per batch row (S-LoRA/Punica style serving of many adapters over one base):
 * the base projection runs once for the whole batch, and each adapter's delta is computed only on
 * the rows that use it (gathered), then the deltas are put back in row order. Rows without a hook
 * get no delta. A batch whose rows all share one hook costs nothing extra: {@link #of} returns
 * that hook itself.
 */
final class RowHooks implements ProjectionHook {
    private final int rows;
    private final List<ProjectionHook> hooks = new ArrayList<>(); // one per group; null for rows without adapter
    private final List<NDArray> groupRows = new ArrayList<>();    // int64 row indices of each group (null: all rows)
    private final int[] groupSizes;
    private final NDArray restore; // inverse permutation from group order back to row order; null when already in order

    private RowHooks(List<ProjectionHook> perRow, NDManager manager) {
        this.rows = perRow.size();
        Map<ProjectionHook, List<Integer>> byHook = new IdentityHashMap<>();
        List<Integer> plain = new ArrayList<>();
        List<ProjectionHook> order = new ArrayList<>();
        for (int i = 0; i < perRow.size(); i++) {
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

    /**
     * The hook for a batch whose row i runs {@code perRow.get(i)} (null: no adapter). Index arrays
     * are created in {@code manager}, which must outlive the forward pass.
     */
    static ProjectionHook of(List<ProjectionHook> perRow, NDManager manager) {
        if (perRow.isEmpty()) return null;
        ProjectionHook first = perRow.get(0);
        boolean same = true;
        for (ProjectionHook h : perRow) same &= h == first;
        return same ? first : new RowHooks(perRow, manager);
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
            parts[g] = template.getManager().zeros(new ai.djl.ndarray.types.Shape(s), template.getDataType());
        }
        NDArray grouped = parts.length == 1 ? parts[0] : NDArrays.concat(new NDList(parts), 0);
        return restore == null ? grouped : grouped.get(new NDIndex("{}", restore));
    }
}
