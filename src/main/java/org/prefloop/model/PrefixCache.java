package org.prefloop.model;

import ai.djl.ndarray.types.DataType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.LongStream;

/**
 * Keys and values of prompt prefixes already computed, kept in blocks of {@link #BLOCK} tokens so
 * that prompts sharing a beginning (a system prompt, the two samples of a round) compute it once.
 * A block is found by its own tokens, the block before it (so a block means the same whole prefix,
 * never a lookalike in another context) and the adapter it was computed with (an adapter changes
 * keys and values). Blocks are evicted least recently used first, to stay within a byte budget
 * (0: nothing is kept). Thread-safe.
 */
public final class PrefixCache {
    public static final int BLOCK = 16;

    private record Key(ProjectionHook adapter, long parent, List<Long> tokens) {
    }

    private static final class Block implements AutoCloseable {
        final long id;
        final KvCache kv; // one row of BLOCK columns

        Block(long id, KvCache kv) {
            this.id = id;
            this.kv = kv;
        }

        public void close() {
            kv.close();
        }
    }

    private final LlamaModel model;
    private final long blockBytes;
    private final Map<Key, Block> blocks = new LinkedHashMap<>(64, 0.75f, true);
    private long budgetBytes;
    private long nextId = 1;
    private long tokensReused;

    PrefixCache(LlamaModel model) {
        this.model = model;
        this.blockBytes = KvCache.bytesPerToken(model.config(), DataType.FLOAT32) * BLOCK;
    }

    /** Bytes the cache may hold; lowering it evicts at once. */
    public synchronized void setBudgetBytes(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("prefix cache budget must be >= 0, got " + bytes);
        budgetBytes = bytes;
        evict();
    }

    /** Bytes held now. */
    public synchronized long bytes() {
        return blocks.size() * blockBytes;
    }

    /** Prompt tokens whose keys and values came from the cache instead of being computed. */
    public synchronized long tokensReused() {
        return tokensReused;
    }

    private static List<Long> tokens(long[] prompt, int block) {
        return LongStream.of(Arrays.copyOfRange(prompt, block * BLOCK, (block + 1) * BLOCK)).boxed().toList();
    }

    /**
     * Copies the longest cached prefix of {@code prompt} (whole blocks, leaving at least its last
     * token to compute, whose logits start generation) into row 0 of {@code into}, which must be
     * empty; returns its length in tokens (0: no hit).
     */
    synchronized int load(long[] prompt, ProjectionHook adapter, KvCache into) {
        int n = load(prompt, adapter, into, 0, 0);
        into.setLength(n);
        return n;
    }

    /**
     * Copies the longest cached prefix of {@code prompt} (as {@link #load(long[], ProjectionHook, KvCache)})
     * into {@code row} of {@code into} from {@code column} on, marking those columns real; the
     * cache's length is the caller's to set. Returns its length in tokens (0: no hit). A caller
     * that plans columns from {@link #cachedTokens} first holds this cache's lock across both, so
     * that no other thread stores or evicts in between.
     */
    synchronized int load(long[] prompt, ProjectionHook adapter, KvCache into, int row, int column) {
        List<Block> hit = longest(prompt, adapter);
        for (int b = 0; b < hit.size(); b++) into.copyColumns(hit.get(b).kv, 0, 0, BLOCK, row, column + b * BLOCK);
        int n = hit.size() * BLOCK;
        tokensReused += n;
        return n;
    }

    /** How many tokens of {@code prompt} {@link #load} would reuse now. */
    synchronized int cachedTokens(long[] prompt, ProjectionHook adapter) {
        return blocks.isEmpty() ? 0 : longest(prompt, adapter).size() * BLOCK;
    }

    private List<Block> longest(long[] prompt, ProjectionHook adapter) {
        List<Block> hit = new ArrayList<>();
        long parent = 0;
        for (int b = 0; (b + 1) * BLOCK <= prompt.length - 1; b++) {
            Block block = blocks.get(new Key(adapter, parent, tokens(prompt, b)));
            if (block == null) break;
            hit.add(block);
            parent = block.id;
        }
        return hit;
    }

    /** Keeps the whole blocks of {@code prompt}, whose keys and values are in {@code src}'s row from column {@code from}. */
    synchronized void store(long[] prompt, ProjectionHook adapter, KvCache src, int row, int from) {
        if (budgetBytes < blockBytes) return;
        long parent = 0;
        for (int b = 0; (b + 1) * BLOCK <= prompt.length; b++) {
            Key key = new Key(adapter, parent, tokens(prompt, b));
            Block block = blocks.get(key);
            if (block == null) {
                KvCache kv = model.newCache(1, BLOCK);
                kv.copyColumns(src, row, from + b * BLOCK, BLOCK, 0, 0);
                kv.setLength(BLOCK);
                block = new Block(nextId++, kv);
                blocks.put(key, block);
            }
            parent = block.id;
        }
        evict();
    }

    private void evict() {
        for (Iterator<Block> it = blocks.values().iterator(); it.hasNext() && bytes() > budgetBytes; ) {
            Block b = it.next();
            it.remove();
            b.close();
        }
    }

    synchronized void close() {
        blocks.values().forEach(Block::close);
        blocks.clear();
    }
}
