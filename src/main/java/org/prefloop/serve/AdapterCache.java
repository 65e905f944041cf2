package org.prefloop.serve;

import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.LowRankHook;
import org.prefloop.model.ProjectionHook;

import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The LoRA adapters loaded over one base model, bounded: at most {@code capacity} are kept
 * (setting {@code prefloop.serve.adapter-cache}); loading one more evicts the least recently used
 * adapter that no running sequence holds. Adapters in use are never evicted, so while more
 * versions than that run at once the cache holds more until they finish. Each adapter is kept
 * only in serving form (one {@link LowRankHook} per adapter, the file's matrices freed once it is
 * made), so rows of a batch on one version form one group and rows on several versions share
 * stacked factors ({@code RowHooks}); an evicted adapter's stacks go with it.
 */
final class AdapterCache {
    private final LlamaModel base;
    private final int capacity;
    private final Map<Path, Entry> entries = new LinkedHashMap<>(16, 0.75f, true); // access order: eldest = least recently used
    private long loads;

    private static final class Entry {
        final LowRankHook hook;
        int users;

        Entry(LowRankHook hook) {
            this.hook = hook;
        }
    }

    AdapterCache(LlamaModel base, int capacity) {
        if (capacity < 1) throw new IllegalArgumentException("prefloop.serve.adapter-cache must be at least 1, got " + capacity);
        this.base = base;
        this.capacity = capacity;
    }

    /** The adapter's hook, loading it if needed; the caller holds it until {@link #release}. */
    synchronized ProjectionHook acquire(Path dir) {
        Entry e = entries.get(dir);
        if (e == null) {
            try (LoraAdapter adapter = LoraAdapter.load(dir, base)) {
                e = new Entry(adapter.servingHook());
            }
            loads++;
            entries.put(dir, e);
        }
        e.users++;
        evict();
        return e.hook;
    }

    synchronized void release(Path dir) {
        Entry e = entries.get(dir);
        if (e != null && e.users > 0) e.users--;
        evict();
    }

    private void evict() {
        for (Iterator<Entry> it = entries.values().iterator(); it.hasNext() && entries.size() > capacity; ) {
            Entry e = it.next();
            if (e.users > 0) continue;
            it.remove();
            e.hook.close();
        }
    }

    /** Adapters loaded now. */
    synchronized int size() {
        return entries.size();
    }

    /** Adapter loads so far (a reload after an eviction counts again). */
    synchronized long loads() {
        return loads;
    }

    synchronized void close() {
        entries.values().forEach(e -> e.hook.close());
        entries.clear();
    }
}
