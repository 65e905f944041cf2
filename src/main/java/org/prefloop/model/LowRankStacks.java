package org.prefloop.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The factors of several {@link LowRankHook}s side by side, so that a batch whose rows run
 * different adapters computes every row's delta of a projection with the same three engine calls
 * however many adapters it mixes ({@link RowHooks}): per module {@code down} = [A₁ᵀ | A₂ᵀ | …]
 * [in, Σr] and {@code up} = [s₁B₁ᵀ; s₂B₂ᵀ; …] [Σr, out], over the adapters that target it.
 *
 * <p>This is Punica's grouped-rows idea fitted to a CPU: instead of gathering each row's own
 * factors (a copy per row and projection every step), every row is multiplied by all the stacked
 * {@code down} factors, which the step reads once anyway, and a row mask keeps only its own
 * adapter's columns before {@code up}. The masked columns are exact zeros, so a row's sum over Σr
 * is its own rank-r sum; adapters of different ranks or target modules need no padding.
 *
 * <p>Building a stack copies the factors, so stacks are kept per set of hooks and reused: a lease
 * holds one during a forward pass; at most {@link #MAX_IDLE} stacks no lease holds are kept, the
 * least recently used going first, and a stack with a closed hook (an adapter evicted from the
 * serving cache) is dropped the next time any stack is asked for. Thread-safe.
 */
final class LowRankStacks {
    static final int MAX_IDLE = 4;

    private final NDManager parent;
    private final Map<List<Long>, Stack> stacks = new LinkedHashMap<>(16, 0.75f, true); // access order
    private long builds;

    LowRankStacks(NDManager parent) {
        this.parent = parent;
    }

    /**
     * Where each slot's columns lie in a module's stacked factors: {@code rank[s]} columns from
     * {@code offset[s]}, none (rank 0) for a slot that leaves the module alone. Modules with equal
     * layouts share one row mask per step.
     */
    record Layout(List<Integer> rank, int[] offset, int width) {
        static Layout of(List<Integer> rank) {
            int[] offset = new int[rank.size()];
            int width = 0;
            for (int s = 0; s < rank.size(); s++) {
                offset[s] = width;
                width += rank.get(s);
            }
            return new Layout(rank, offset, width);
        }
    }

    /** One module's stacked factors. */
    record Module(NDArray down, NDArray up, Layout layout) {
    }

    /** The stacked factors of one set of hooks (its slots, in serial order). */
    static final class Stack implements AutoCloseable {
        final List<LowRankHook> slots;
        private final NDManager manager;
        private final Map<String, Module> modules = new HashMap<>();
        private final Map<List<Integer>, Layout> layouts = new LinkedHashMap<>();
        private int leases;

        private Stack(List<LowRankHook> slots, NDManager parent) {
            this.slots = slots;
            this.manager = parent.newSubManager();
            try {
                Set<String> names = new LinkedHashSet<>();
                for (LowRankHook h : slots) names.addAll(h.modules().keySet());
                for (String module : names) modules.put(module, stack(module));
            } catch (RuntimeException e) {
                manager.close();
                throw e;
            }
        }

        private Module stack(String module) {
            List<Integer> rank = new ArrayList<>();
            List<NDArray> downs = new ArrayList<>();
            List<NDArray> ups = new ArrayList<>();
            for (LowRankHook h : slots) {
                LowRankHook.Factors f = h.factors(module);
                rank.add(f == null ? 0 : f.rank());
                if (f == null) continue;
                downs.add(f.down());
                ups.add(f.up());
            }
            Layout layout = layouts.computeIfAbsent(rank, Layout::of);
            if (downs.size() == 1) return new Module(downs.get(0), ups.get(0), layout); // the hook's own arrays: nothing to copy
            NDArray down = NDArrays.concat(new NDList(downs), 1);
            NDArray up = NDArrays.concat(new NDList(ups), 0);
            down.attach(manager);
            up.attach(manager);
            NDScope.unregister(down, up); // kept across steps
            return new Module(down, up, layout);
        }

        /** The module's stacked factors, or null when no slot targets it. */
        Module module(String name) {
            return modules.get(name);
        }

        /** The distinct layouts of the stack's modules: one row mask each per step. */
        Iterable<Layout> layouts() {
            return layouts.values();
        }

        int slot(LowRankHook hook) {
            return slots.indexOf(hook);
        }

        boolean stale() {
            for (LowRankHook h : slots) if (h.isClosed()) return true;
            return false;
        }

        @Override
        public void close() {
            manager.close();
        }
    }

    /** The stack of {@code hooks} (distinct, any order), built if needed; hold it until {@link #release}. */
    synchronized Stack lease(List<LowRankHook> hooks) {
        List<LowRankHook> slots = new ArrayList<>(hooks);
        slots.sort((a, b) -> Long.compare(a.serial(), b.serial()));
        List<Long> key = slots.stream().map(LowRankHook::serial).toList();
        dropStale();
        Stack s = stacks.get(key);
        if (s == null) {
            s = new Stack(List.copyOf(slots), parent);
            builds++;
            stacks.put(key, s);
        }
        s.leases++;
        evict();
        return s;
    }

    synchronized void release(Stack s) {
        s.leases--;
        evict();
    }

    /** Stacks built so far (a rebuild after an eviction counts again). */
    synchronized long builds() {
        return builds;
    }

    /** Stacks kept now, leased or idle. */
    synchronized int size() {
        return stacks.size();
    }

    private void dropStale() {
        for (Iterator<Stack> it = stacks.values().iterator(); it.hasNext(); ) {
            Stack s = it.next();
            if (s.leases == 0 && s.stale()) {
                it.remove();
                s.close();
            }
        }
    }

    private void evict() {
        int idle = 0;
        for (Stack s : stacks.values()) if (s.leases == 0) idle++;
        for (Iterator<Stack> it = stacks.values().iterator(); it.hasNext() && idle > MAX_IDLE; ) {
            Stack s = it.next();
            if (s.leases > 0) continue;
            it.remove();
            s.close();
            idle--;
        }
    }
}
