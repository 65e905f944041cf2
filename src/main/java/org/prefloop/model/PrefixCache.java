package org.prefloop.model;

import ai.djl.ndarray.types.DataType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.LongStream;

/**
 * Keys and values of token sequences already computed, so that prompts sharing a beginning (a
 * system prompt, the two samples of a round, a conversation's next turn, a repeated request)
 * compute it once. Prompts are kept when prefilled, and again with the tokens generated after
 * them when their sequence ends, so that a conversation's next turn, which begins with the
 * previous prompt and reply, computes only what follows the reply. A sequence is kept in blocks
 * of {@link #BLOCK} tokens and a last, partial block for its tail (dropped when a longer block
 * that begins with it is kept). A block is found by its own tokens, the block before it (so a
 * block means the same whole prefix, never a lookalike in another context) and the adapter it was
 * computed with (an adapter changes keys and values). Reuse is by the token, not only by the
 * block: a prompt takes the whole blocks it shares and then, from the blocks that follow them, the
 * longest run of tokens it shares with one (keys and values of a token depend only on the tokens
 * before it), always leaving its last token to compute. Blocks are evicted least recently used
 * first, a block that others follow only after them, to stay within a byte budget (0: nothing is
 * kept); a partial block costs a whole one. Thread-safe.
 */
public final class PrefixCache {
    public static final int BLOCK = 16;

    private record Key(ProjectionHook adapter, long parent, List<Long> tokens) {
        Parent parentKey() {
            return new Parent(adapter, parent);
        }
    }

    /** The blocks that may follow one block (0: the prompt's start) under one adapter. */
    private record Parent(ProjectionHook adapter, long id) {
    }

    private static final class Block implements AutoCloseable {
        final long id;
        final KvCache kv; // one row of BLOCK columns, the first tokens().size() of them computed

        Block(long id, KvCache kv) {
            this.id = id;
            this.kv = kv;
        }

        public void close() {
            kv.close();
        }
    }

    /** The cached prefix of a prompt: whole blocks, then {@code tailTokens} columns of {@code tail} (null: none). */
    private record Hit(List<Block> blocks, Block tail, int tailTokens) {
        int tokens() {
            return blocks.size() * BLOCK + tailTokens;
        }
    }

    private final LlamaModel model;
    private final long blockBytes;
    private final Map<Key, Block> blocks = new LinkedHashMap<>(64, 0.75f, true);
    private final Map<Parent, Set<Key>> children = new HashMap<>();
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

    /** True when the budget holds not even one block: nothing is kept. */
    public synchronized boolean isOff() {
        return budgetBytes < blockBytes;
    }

    /** Bytes one block takes, a partial one too. */
    long blockBytes() {
        return blockBytes;
    }

    /** Bytes held now. */
    public synchronized long bytes() {
        return blocks.size() * blockBytes;
    }

    /** Prompt tokens whose keys and values came from the cache instead of being computed. */
    public synchronized long tokensReused() {
        return tokensReused;
    }

    /** The tokens of block {@code block} of {@code prompt}: BLOCK of them, or fewer for its last, partial block. */
    private static List<Long> tokens(long[] prompt, int block) {
        return LongStream.of(Arrays.copyOfRange(prompt, block * BLOCK, Math.min(prompt.length, (block + 1) * BLOCK))).boxed().toList();
    }

    /**
     * Copies the longest cached prefix of {@code prompt} (leaving at least its last token to
     * compute, whose logits start generation) into row 0 of {@code into}, which must be empty;
     * returns its length in tokens (0: no hit).
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
        Hit hit = longest(prompt, adapter);
        for (int b = 0; b < hit.blocks().size(); b++) into.copyColumns(hit.blocks().get(b).kv, 0, 0, BLOCK, row, column + b * BLOCK);
        if (hit.tail() != null) into.copyColumns(hit.tail().kv, 0, 0, hit.tailTokens(), row, column + hit.blocks().size() * BLOCK);
        int n = hit.tokens();
        tokensReused += n;
        return n;
    }

    /** How many tokens of {@code prompt} {@link #load} would reuse now. */
    synchronized int cachedTokens(long[] prompt, ProjectionHook adapter) {
        return blocks.isEmpty() ? 0 : longest(prompt, adapter).tokens();
    }

    private Hit longest(long[] prompt, ProjectionHook adapter) {
        int reusable = prompt.length - 1; // the last token is always computed
        List<Block> hit = new ArrayList<>();
        long parent = 0;
        int b = 0;
        for (; (b + 1) * BLOCK <= reusable; b++) {
            Block block = blocks.get(new Key(adapter, parent, tokens(prompt, b)));
            if (block == null) break;
            hit.add(block);
            parent = block.id;
        }
        // then the longest run of tokens shared with a block that may follow: a partial one, or a
        // whole one this prompt leaves early (it differs inside it, or ends at its last token)
        int from = b * BLOCK;
        Key best = null;
        int bestTokens = 0;
        for (Key k : children.getOrDefault(new Parent(adapter, parent), Set.of())) {
            int n = 0;
            while (n < k.tokens().size() && from + n < reusable && k.tokens().get(n) == prompt[from + n]) n++;
            if (n > bestTokens) {
                best = k;
                bestTokens = n;
            }
        }
        return new Hit(hit, best == null ? null : blocks.get(best), bestTokens); // get: the tail counts as used
    }

    /** Keeps {@code prompt}'s blocks, a partial last one included, whose keys and values are in {@code src}'s row from column {@code from}. */
    synchronized void store(long[] prompt, ProjectionHook adapter, KvCache src, int row, int from) {
        if (isOff()) return;
        long parent = 0;
        for (int b = 0; b * BLOCK < prompt.length; b++) {
            Key key = new Key(adapter, parent, tokens(prompt, b));
            Block block = blocks.get(key);
            if (block == null) {
                if (key.tokens().size() < BLOCK && covered(key)) break; // a longer block there starts with this tail
                int n = key.tokens().size();
                KvCache kv = model.newCache(1, BLOCK);
                kv.copyColumns(src, row, from + b * BLOCK, n, 0, 0);
                kv.setLength(n);
                block = new Block(nextId++, kv);
                dropCoveredBy(key);
                blocks.put(key, block);
                children.computeIfAbsent(key.parentKey(), p -> new HashSet<>()).add(key);
            }
            parent = block.id;
        }
        evict();
    }

    /** Whether a block already kept after the same parent begins with {@code tail}'s tokens. */
    private boolean covered(Key tail) {
        for (Key k : children.getOrDefault(tail.parentKey(), Set.of())) if (extendsTokens(k, tail)) return true;
        return false;
    }

    /** Drops partial blocks after {@code key}'s parent whose tokens {@code key}'s begin with: it serves every prompt they would. */
    private void dropCoveredBy(Key key) {
        for (Key k : List.copyOf(children.getOrDefault(key.parentKey(), Set.of()))) {
            if (!extendsTokens(key, k)) continue;
            forget(k);
            blocks.remove(k).close();
        }
    }

    /** Whether {@code longer}'s tokens are more than {@code shorter}'s and begin with them. */
    private static boolean extendsTokens(Key longer, Key shorter) {
        int n = shorter.tokens().size();
        return longer.tokens().size() > n && longer.tokens().subList(0, n).equals(shorter.tokens());
    }

    /**
     * Evicts least recently used blocks until the cache fits its budget, leaves first: a block
     * that others follow stays until they are gone. A lookup touches a prefix's blocks from the
     * first on, so plain LRU order would evict the first block of a chain, typically a shared
     * system prompt, and leave the blocks after it unreachable (a block is found through the one
     * before it) yet still held.
     */
    private void evict() {
        boolean evicted = true;
        while (evicted && bytes() > budgetBytes) {
            evicted = false; // a pass may leave a parent a leaf behind it: the next pass takes it
            for (Iterator<Map.Entry<Key, Block>> it = blocks.entrySet().iterator(); it.hasNext() && bytes() > budgetBytes; ) {
                Map.Entry<Key, Block> e = it.next();
                if (children.containsKey(new Parent(e.getKey().adapter(), e.getValue().id))) continue;
                it.remove();
                forget(e.getKey());
                e.getValue().close();
                evicted = true;
            }
        }
    }

    private void forget(Key key) {
        Set<Key> siblings = children.get(key.parentKey());
        if (siblings == null) return;
        siblings.remove(key);
        if (siblings.isEmpty()) children.remove(key.parentKey());
    }

    synchronized void close() {
        blocks.values().forEach(Block::close);
        blocks.clear();
        children.clear();
    }
}
