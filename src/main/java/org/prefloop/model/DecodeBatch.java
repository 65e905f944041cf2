package org.prefloop.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Iteration-level ("continuous") batching: sequences join a running batch between decode steps
 * and leave the moment they finish, each with its own sampling settings, seed and stop rules.
 *
 * <p>A newcomer's prompt is prefilled into a scratch cache, with the other newcomers of the same
 * iteration in one forward pass, each starting from the prefix the {@link PrefixCache} holds for
 * it; then its keys and values are copied into a free row of the
 * batch's cache, right-aligned to the batch's current column; {@link #step()} then decodes one
 * token for every row in one forward pass. Positions count each row's own real tokens, so a row
 * computes exactly what it would alone; only the reduction order over masked columns differs.
 *
 * <p>Newcomers need not wait for the step in progress: {@link #setBetweenLayers} gives the step a
 * callback that runs between two of its decoder layers and may {@link #admit} whoever arrived
 * meanwhile. Their prefill runs there, on its own scratch cache, and their first token is out at
 * once; they take their rows when the step ends ({@link #size()} counts them meanwhile).
 * Not thread-safe: one scheduler thread drives a batch.
 */
public final class DecodeBatch implements AutoCloseable {
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    /**
     * One sequence to generate. {@code sample} separates the random streams of several samples with
     * one seed. {@code adapter} is the projection hook of the sequence's model version (a LoRA
     * adapter over the batch's base; null: the base itself): rows with different adapters share
     * one forward pass of the base, each getting its own adapter's delta ({@link RowHooks}; a
     * {@link LowRankHook} is the form that mixes at the cost of one).
     */
    public record Request(long[] prompt, Generator.GenerationParams params, int sample, Listener listener, ProjectionHook adapter) {
        public Request(long[] prompt, Generator.GenerationParams params, int sample, Listener listener) {
            this(prompt, params, sample, listener, null);
        }
    }

    /**
     * How a sequence's prompt was prefilled, told to its listener just before its first token
     * (times from {@link System#nanoTime()}): {@code admitted} when {@link #admit} took it,
     * {@code start} and {@code end} the first and last of its prefill passes ({@code end}: its
     * first token's logits are ready), {@code rows} and {@code tokens} the rows and real tokens
     * computed in its (last) pass, shared with the other newcomers of that pass, {@code passes}
     * how many passes its prompt took (more than one when chunked).
     */
    public record Prefilled(long admitted, long start, long end, int rows, int tokens, int passes) {
    }

    /** Receives one sequence's output; {@link #cancelled()} is read before every step. */
    public interface Listener {
        /** Every generated token (the ending eos/stop token included) with the text it releases (possibly empty). */
        void onToken(long tokenId, String textDelta);

        /** Once, when the sequence ends: finish reason "stop", "length", or "cancelled". */
        void onDone(Generator.Completion completion);

        default boolean cancelled() {
            return false;
        }

        /** Once, just before the first {@link #onToken}: where the sequence's time to first token went in the engine. */
        default void onPrefilled(Prefilled prefilled) {
        }

        /** How many alternatives each token's {@link TokenLogprobs} lists; -1 (the default): no logprobs. */
        default int topLogprobs() {
            return -1;
        }

        /** {@link #onToken(long, String)} with the token's logprobs: null unless asked for, and for the eos/stop token that ends. */
        default void onToken(long tokenId, String textDelta, TokenLogprobs logprobs) {
            onToken(tokenId, textDelta);
        }
    }

    private final Generator generator;
    private final LlamaModel model;
    private final TextTokenizer tokenizer;
    private final List<Row> rows = new ArrayList<>();
    /** Prefilled during a step, first token given: they take their rows when it ends. */
    private final List<Joining> joining = new ArrayList<>();
    private boolean stepping;
    private Runnable betweenLayers;
    /**
     * Prefill passes that compute at most this many positions (rows × columns) run on the decode
     * threads ({@link Generator#decodeThreads()}), larger ones on the engine's. A small pass is a
     * chain of small ops like a decode step, and on cores shared with other work (the service's
     * HTTP threads, other processes) each op that enters libtorch's pool waits for a descheduled
     * worker: measured on two shared cores (load 6-9), a 16-token pass took 7.0 s p50 on two
     * threads against 0.37 s on one ({@code PrefillThreadsBenchmark} compares the two by size).
     * {@code -Dprefloop.prefill.small-tokens=N} overrides it; 0 puts every pass on the engine's threads.
     */
    static final int DEFAULT_SMALL_PREFILL_TOKENS = Integer.getInteger("prefloop.prefill.small-tokens", 128);

    private final int prefillThreads;
    private int smallPrefillTokens = DEFAULT_SMALL_PREFILL_TOKENS;
    private final java.util.ArrayDeque<Prefill> prefilling = new java.util.ArrayDeque<>();
    private int prefillChunk;
    private long prefillChunks;
    private long prefillPasses;
    private long gapsClosed;
    private KvCache cache; // null while the batch is empty

    DecodeBatch(Generator generator, LlamaModel model, TextTokenizer tokenizer) {
        this.generator = generator;
        this.model = model;
        this.tokenizer = tokenizer;
        this.prefillThreads = JniUtils.getNumThreads();
    }

    /** Sequences in the batch: decoding now, or still having their prompt prefilled in chunks. */
    public int size() {
        int waitingForRows = 0;
        for (Joining j : joining) waitingForRows += j.rows().size();
        return rows.size() + prefilling.size() + waitingForRows;
    }

    /** Sequences decoding now. */
    public int decoding() {
        return rows.size();
    }

    public boolean isEmpty() {
        return rows.isEmpty() && prefilling.isEmpty() && joining.isEmpty();
    }

    /**
     * Runs {@code callback} (null: nothing) between every two decoder layers of each decode step,
     * on the thread that steps: it may {@link #admit} newcomers, which are prefilled there and get
     * their first token before the step ends, instead of after it. The step's own rows compute
     * the same tokens either way.
     */
    public void setBetweenLayers(Runnable callback) {
        this.betweenLayers = callback;
    }

    /** The longest prompt-plus-max-tokens among the batch's sequences: the columns a compacted cache needs. */
    public int longestReservation() {
        int m = 0;
        for (Row r : rows) m = Math.max(m, r.promptTokens + r.params.maxTokens());
        for (Prefill f : prefilling) m = Math.max(m, f.request.prompt().length + f.request.params().maxTokens());
        for (Joining j : joining) for (Row r : j.rows()) m = Math.max(m, r.promptTokens + r.params.maxTokens());
        return m;
    }

    private void dropCancelledPrefills() {
        for (var it = prefilling.iterator(); it.hasNext(); ) {
            Prefill f = it.next();
            if (!f.request.listener().cancelled()) continue;
            it.remove();
            f.scratch.close();
            f.request.listener().onDone(new Generator.Completion(new long[0], "", "cancelled", f.request.prompt().length));
        }
    }

    /** A prompt being prefilled chunk by chunk into its own one-row cache. */
    private static final class Prefill {
        final Request request;
        final KvCache scratch;
        int done;
        boolean chunked; // prefilled in more than one piece (counted in prefillChunks)
        final long admitted = System.nanoTime();
        long started; // the first pass's start, 0 before it
        int passes;

        Prefill(Request request, KvCache scratch) {
            this.request = request;
            this.scratch = scratch;
        }
    }

    /** Prefill passes of at most this many positions run on the decode threads (0: none; see {@link #DEFAULT_SMALL_PREFILL_TOKENS}). */
    public void setSmallPrefillTokens(int positions) {
        if (positions < 0) throw new IllegalArgumentException("small prefill must be >= 0 positions, got " + positions);
        this.smallPrefillTokens = positions;
    }

    /** The threads a prefill pass of {@code positions} (rows × columns) runs on. */
    int prefillThreads(int positions) {
        return positions <= smallPrefillTokens ? generator.decodeThreads() : prefillThreads;
    }

    /**
     * Prompts longer than this many tokens are prefilled in chunks of it, one chunk per
     * {@link #step()}, so the sequences already decoding get a token between two chunks instead
     * of waiting for the whole prompt (0: every prompt at once).
     */
    public void setPrefillChunk(int tokens) {
        if (tokens < 0) throw new IllegalArgumentException("prefill chunk must be >= 0, got " + tokens);
        this.prefillChunk = tokens;
    }

    /**
     * Adds the newcomers to the batch. Those whose prompt, less the prefix the {@link PrefixCache}
     * holds for it, fits the prefill chunk are prefilled together now, in one forward pass, and
     * get their first token at once; longer ones are prefilled a chunk per {@link #step()} and
     * join when done. All are checked before any work: a bad prompt throws and leaves the batch as
     * it was.
     */
    public void admit(List<Request> newcomers) {
        if (newcomers.isEmpty()) return;
        long admitted = System.nanoTime();
        int vocab = model.config().vocabSize();
        for (int i = 0; i < newcomers.size(); i++) {
            long[] p = newcomers.get(i).prompt();
            if (p.length == 0) throw new IllegalArgumentException("prompt " + i + " is empty");
            for (long id : p) {
                if (id < 0 || id >= vocab) throw new IllegalArgumentException("prompt " + i + " has token id " + id + " outside the vocabulary");
            }
        }
        List<Request> now = new ArrayList<>();
        List<Integer> cached = new ArrayList<>();
        PrefixCache prefixes = generator.prefixCache();
        Together together = null;
        synchronized (prefixes) { // the prefixes planned for are the ones loaded: nothing is stored or evicted in between
            for (Request r : newcomers) {
                int p = r.prompt().length;
                int c = prefixes.cachedTokens(r.prompt(), r.adapter());
                if (prefillChunk == 0 || p - c <= prefillChunk) { // prefilled together below
                    now.add(r);
                    cached.add(c);
                    continue;
                }
                Prefill f = new Prefill(r, model.newCache(1, p));
                f.done = prefixes.load(r.prompt(), r.adapter(), f.scratch);
                prefilling.addLast(f);
            }
            if (!now.isEmpty()) together = Together.load(now, cached.stream().mapToInt(Integer::intValue).toArray(), prefixes, model);
        }
        if (together != null) prefillTogether(together, admitted);
        if (!stepping) removeFinished();
    }

    /**
     * Newcomers prefilled in one forward pass, hits of the prefix cache and others alike, in a
     * scratch cache of one row each. With P the longest cached prefix among them, row i's cached
     * prefix (c_i tokens) sits right-aligned in columns [P - c_i, P) and the rest of its prompt
     * (s_i tokens) follows from column P, left-aligned in the new input, masked padding after it:
     * each row's real columns are contiguous, [P - c_i, P + s_i), and positions count real tokens
     * only, so each row computes what it computes alone. Newcomers with the same prompt and
     * adapter (the samples of one prompt) share one row: {@code rowOf} maps each request to its row,
     * {@code computed} holds the first request of each row.
     */
    private record Together(List<Request> requests, int[] rowOf, List<Request> computed, int[] cached, int columns, KvCache scratch) {
        static Together load(List<Request> requests, int[] cachedPerRequest, PrefixCache prefixes, LlamaModel model) {
            int[] rowOf = new int[requests.size()];
            List<Request> computed = new ArrayList<>();
            List<Integer> cachedPerRow = new ArrayList<>();
            for (int i = 0; i < requests.size(); i++) {
                Request r = requests.get(i);
                int row = 0;
                while (row < computed.size() && !(computed.get(row).adapter() == r.adapter() && Arrays.equals(computed.get(row).prompt(), r.prompt()))) row++;
                if (row == computed.size()) {
                    computed.add(r);
                    cachedPerRow.add(cachedPerRequest[i]);
                }
                rowOf[i] = row;
            }
            int[] cached = cachedPerRow.stream().mapToInt(Integer::intValue).toArray();
            int columns = 0;
            int suffix = 0;
            for (int j = 0; j < computed.size(); j++) {
                columns = Math.max(columns, cached[j]);
                suffix = Math.max(suffix, computed.get(j).prompt().length - cached[j]);
            }
            KvCache scratch = model.newCache(computed.size(), columns + suffix);
            try {
                for (int j = 0; j < computed.size(); j++) {
                    if (cached[j] == 0) continue;
                    Request r = computed.get(j);
                    int loaded = prefixes.load(r.prompt(), r.adapter(), scratch, j, columns - cached[j]);
                    if (loaded != cached[j]) throw new IllegalStateException("prefix cache loaded " + loaded + " tokens, " + cached[j] + " planned");
                }
                scratch.setLength(columns);
            } catch (RuntimeException e) {
                scratch.close();
                throw e;
            }
            return new Together(requests, rowOf, computed, cached, columns, scratch);
        }

        /** Tokens row {@code j} computes: its prompt less its cached prefix. */
        int suffix(int j) {
            return computed.get(j).prompt().length - cached[j];
        }
    }

    private void prefillTogether(Together together, long admitted) {
        long start = System.nanoTime(); // the pass's time includes switching libtorch to the prefill's threads
        List<Request> newcomers = together.computed();
        int k = newcomers.size();
        int longest = 0;
        for (int i = 0; i < k; i++) longest = Math.max(longest, together.suffix(i));
        boolean wasGrad = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        threads(prefillThreads(k * longest));
        KvCache scratch = together.scratch();
        boolean handedOver = false;
        try (NDManager manager = model.manager().newSubManager()) {
            long[][] ids = new long[k][longest];
            long[][] mask = new long[k][longest];
            for (int i = 0; i < k; i++) {
                long[] p = newcomers.get(i).prompt();
                int c = together.cached()[i];
                System.arraycopy(p, c, ids[i], 0, p.length - c);
                Arrays.fill(mask[i], 0, p.length - c, 1);
            }
            int[] from = new int[together.requests().size()];
            for (int i = 0; i < from.length; i++) from[i] = together.columns() - together.cached()[together.rowOf()[i]];
            float[] logits;
            try (NDScope scope = new NDScope();
                 RowHooks hooks = RowHooks.of(newcomers.stream().map(Request::adapter).toList(), manager, generator.lowRankStacks())) {
                NDArray hidden = model.hidden(manager.create(ids), manager.create(mask), scratch, hooks.hook());
                prefillPasses++;
                NDList last = new NDList(k);
                for (int i = 0; i < k; i++) last.add(hidden.get(new NDIndex("{}:{}, {}:{}, :", i, i + 1, together.suffix(i) - 1, together.suffix(i))));
                logits = lastLogits(k == 1 ? last.get(0) : NDArrays.concat(last, 0), k);
            }
            int tokens = 0;
            for (int i = 0; i < k; i++) tokens += together.suffix(i);
            handedOver = true;
            join(together.requests(), scratch, together.rowOf(), from, logits, new Prefilled(admitted, start, System.nanoTime(), k, tokens, 1));
        } finally {
            if (!handedOver) scratch.close();
            JniUtils.setGradMode(wasGrad);
        }
    }

    /** One chunk of the oldest chunked prefill; when its prompt is complete it joins the batch. */
    private void advancePrefill() {
        if (complete(prefilling.peekFirst())) prefilling.pollFirst();
    }

    /** Prefills the next chunk of {@code f} (all of it without a chunk size); true when the prompt is done and joined. */
    private boolean complete(Prefill f) {
        long[] prompt = f.request.prompt();
        int remaining = prompt.length - f.done;
        int t = prefillChunk > 0 ? Math.min(prefillChunk, remaining) : remaining;
        if (f.started == 0) f.started = System.nanoTime();
        boolean wasGrad = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        threads(prefillThreads(t));
        try (NDManager manager = model.manager().newSubManager()) {
            float[] logits = null;
            f.passes++;
            try (NDScope scope = new NDScope()) {
                NDArray ids = manager.create(Arrays.copyOfRange(prompt, f.done, f.done + t), new Shape(1, t));
                NDArray hidden = model.hidden(ids, manager.ones(new Shape(1, t), DataType.INT64), f.scratch, f.request.adapter());
                prefillPasses++;
                f.done += t;
                if (t < remaining || f.chunked) {
                    f.chunked = true;
                    prefillChunks++;
                }
                if (f.done == prompt.length) logits = lastLogits(hidden, 1);
            }
            if (logits == null) return false;
            join(List.of(f.request), f.scratch, new int[] {0}, new int[] {0}, logits,
                    new Prefilled(f.admitted, f.started, System.nanoTime(), 1, t, f.passes));
            return true;
        } finally {
            JniUtils.setGradMode(wasGrad);
        }
    }

    /**
     * Prefilled sequences (request i's prompt is in row {@code rowOf[i]} of {@code scratch}, from
     * column {@code from[i]}) get their first token from their row's {@code logits} (one
     * vocabulary's worth per scratch row; each listener hears {@code prefilled} first) and take
     * free rows of the batch: at once, or when the step in progress ends. Takes {@code scratch}.
     */
    private void join(List<Request> newcomers, KvCache scratch, int[] rowOf, int[] from, float[] logits, Prefilled prefilled) {
        Joining j;
        try {
            List<Row> joined = new ArrayList<>();
            for (int i = 0; i < newcomers.size(); i++) {
                Request r = newcomers.get(i);
                generator.prefixCache().store(r.prompt(), r.adapter(), scratch, rowOf[i], from[i]); // reusable at once, by the next arrival too
                joined.add(new Row(r, 0));
            }
            j = new Joining(joined, scratch, rowOf, from);
            int vocabSize = logits.length / scratch.batchSize();
            for (int i = 0; i < joined.size(); i++) {
                Row row = joined.get(i);
                row.request.listener().onPrefilled(prefilled);
                row.accept(choose(Arrays.copyOfRange(logits, rowOf[i] * vocabSize, (rowOf[i] + 1) * vocabSize), row));
            }
        } catch (RuntimeException e) {
            scratch.close();
            throw e;
        }
        if (stepping) joining.add(j);
        else takeRows(j);
    }

    /** Sequences prefilled and given their first token, with the scratch cache that holds their prompts. */
    private record Joining(List<Row> rows, KvCache scratch, int[] rowOf, int[] from) {
    }

    /**
     * Copies joining sequences' keys and values into free rows of the batch, right-aligned to the
     * batch's current column (a longer one widens the batch first), and frees their scratch cache.
     */
    private void takeRows(Joining j) {
        try (KvCache scratch = j.scratch()) {
            int k = j.rows().size();
            int longest = 0;
            for (Row r : j.rows()) longest = Math.max(longest, r.promptTokens);
            int first = rows.size();
            int length = cache == null ? 0 : cache.length();
            int needed = Math.max(length, longest);
            ensure(first + k, needed + 1);
            if (needed > cache.length()) cache.pad(needed - cache.length());
            for (int i = 0; i < k; i++) {
                Row row = j.rows().get(i);
                Request r = row.request;
                int p = r.prompt().length;
                cache.copyRow(scratch, j.rowOf()[i], j.from()[i], p, first + i, needed - p);
                row.start = needed - p;
                rows.add(row);
            }
            cache.setActive(rows.size());
        }
    }

    /** Prompt chunks prefilled so far by chunked prefill. */
    public long prefillChunks() {
        return prefillChunks;
    }

    /** Forward passes that prefilled prompts so far: one per {@link #admit} of prompts that fit a chunk, one per chunk of longer ones. */
    public long prefillPasses() {
        return prefillPasses;
    }

    /** Rows whose padding (masked columns left by a longer newcomer) compaction has closed so far. */
    public long gapsClosed() {
        return gapsClosed;
    }

    /** One decode step for every running sequence; sequences that finish or were cancelled leave the batch. */
    public void step() {
        for (Row r : rows) if (!r.done && r.request.listener().cancelled()) r.finish("cancelled");
        dropCancelledPrefills();
        removeFinished();
        if (!prefilling.isEmpty()) {
            advancePrefill(); // one chunk, then the running sequences decode: a long prompt does not stall them
            removeFinished();
        }
        if (rows.isEmpty()) return;
        if (cache.length() + 1 > cache.capacity()) {
            compact();
            if (cache.length() + 1 > cache.capacity()) ensure(rows.size(), cache.length() + 1);
        }
        int n = rows.size();
        long[] last = new long[n];
        for (int i = 0; i < n; i++) last[i] = rows.get(i).lastToken;
        boolean wasGrad = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        threads(generator.decodeThreads());
        try (NDManager manager = model.manager().newSubManager()) {
            long[] next;
            try (NDScope scope = new NDScope();
                 RowHooks hooks = RowHooks.of(rows.stream().map(r -> r.request.adapter()).toList(), manager, generator.lowRankStacks())) {
                stepping = true;
                NDArray hidden = model.hidden(manager.create(last, new Shape(n, 1)), manager.ones(new Shape(n, 1), DataType.INT64), cache, hooks.hook(),
                        betweenLayers == null ? null : this::betweenLayers);
                NDArray logits = model.logits(hidden.get(new NDIndex(":, -1:, :"))).reshape(n, -1);
                next = pick(logits);
            } finally {
                stepping = false;
            }
            for (int i = 0; i < n; i++) rows.get(i).accept(next[i]);
        } finally {
            JniUtils.setGradMode(wasGrad);
            joinWaiting();
        }
        removeFinished();
    }

    /** The step's callback; a prefill it runs may move libtorch to the prefill's threads, so the step's come back. */
    private void betweenLayers() {
        betweenLayers.run();
        threads(generator.decodeThreads());
    }

    /** Those prefilled during the step take their rows (those left after a failure free their scratch caches). */
    private void joinWaiting() {
        try {
            while (!joining.isEmpty()) takeRows(joining.remove(0));
        } finally {
            for (Joining j : joining) j.scratch().close();
            joining.clear();
        }
    }

    /**
     * Prefill runs on the engine's threads (small passes on the decode threads, {@link #prefillThreads(int)}),
     * decode steps on {@link Generator#decodeThreads()}.
     * The setting is the process's, and changing it rebuilds libtorch's pool, so it changes only
     * when the phase does; {@link #close()} restores the engine's.
     */
    private void threads(int n) {
        if (JniUtils.getNumThreads() != n) JniUtils.setNumThreads(n);
    }

    private float[] lastLogits(NDArray hidden, int k) {
        return model.logits(hidden.get(new NDIndex(":, -1:, :"))).reshape(k, -1).toType(DataType.FLOAT32, false).toFloatArray();
    }

    /** Greedy rows without penalties pick on the native side when the whole batch is such; otherwise rows copy their logits. */
    private long[] pick(NDArray logits) {
        boolean allGreedy = true;
        for (Row r : rows) allGreedy &= r.params.isPlainGreedy() && r.request.listener().topLogprobs() < 0;
        if (allGreedy) return logits.argMax(1).toLongArray();
        int n = rows.size();
        int vocab = (int) logits.getShape().get(1);
        float[] all = logits.toType(DataType.FLOAT32, false).toFloatArray();
        long[] next = new long[n];
        for (int i = 0; i < n; i++) next[i] = choose(Arrays.copyOfRange(all, i * vocab, (i + 1) * vocab), rows.get(i));
        return next;
    }

    private static long choose(float[] row, Row r) {
        int top = r.request.listener().topLogprobs();
        float[] model = top >= 0 ? row.clone() : null; // the sampler edits its row; logprobs are of the model's own
        long token = Sampling.choose(row, r.seen, r.counts, r.params, r.random);
        r.logprobs = model == null ? null : Sampling.logprobs(model, token, top);
        return token;
    }

    /** Grows the cache to hold {@code rowsNeeded} rows of {@code columns} columns, doubling to keep reallocations rare. */
    private void ensure(int rowsNeeded, int columns) {
        if (cache == null) {
            cache = model.newCache(Math.max(rowsNeeded, 1), roundUp(columns));
            cache.setActive(0);
            return;
        }
        int newRows = rowsNeeded <= cache.allocatedRows() ? cache.allocatedRows() : Math.max(rowsNeeded, 2 * cache.allocatedRows());
        int newColumns = columns <= cache.capacity() ? cache.capacity() : Math.max(columns, 2 * cache.capacity());
        cache.grow(newRows, newColumns);
    }

    private static int roundUp(int columns) {
        return Math.max(64, Integer.highestOneBit(Math.max(columns - 1, 1)) << 1);
    }

    /**
     * Right-aligns every row's real tokens, closing the gaps that padding for longer newcomers
     * left, so that the columns in use are as few as the longest sequence: the batch's column
     * count only grows while sequences come and go.
     */
    private void compact() {
        int[][][] runs = new int[rows.size()][][];
        int[] counts = new int[rows.size()];
        int longest = 0;
        for (int i = 0; i < rows.size(); i++) {
            runs[i] = cache.realRuns(i, rows.get(i).start);
            for (int[] run : runs[i]) counts[i] += run[1];
            longest = Math.max(longest, counts[i]);
        }
        for (int i = 0; i < rows.size(); i++) {
            int to = longest - counts[i];
            if (runs[i].length > 1) gapsClosed++;
            cache.squeezeRow(i, runs[i], to);
            rows.get(i).start = to;
        }
        cache.setLength(longest);
    }

    /**
     * Finished rows leave: the last row moves into each freed place. An empty batch frees its
     * cache. What a row computed, its prompt and the tokens it generated, goes to the prefix cache
     * first: a conversation's next turn begins with both.
     */
    private void removeFinished() {
        for (int i = rows.size() - 1; i >= 0; i--) {
            Row r = rows.get(i);
            if (!r.done) continue;
            keepSequence(r, i);
            int last = rows.size() - 1;
            if (i != last) {
                cache.moveRow(last, i);
                rows.set(i, rows.get(last));
            }
            rows.remove(last);
            cache.setActive(rows.size());
            r.request.listener().onDone(r.completion());
        }
        if (rows.isEmpty() && cache != null) {
            cache.close();
            cache = null;
        }
    }

    /**
     * Gives the prefix cache the keys and values of a finished row's prompt and generated tokens:
     * every generated token but the last was fed back, so its keys and values are in the row's
     * columns after the prompt (the prompt's own blocks are kept already, at its prefill).
     */
    private void keepSequence(Row r, int row) {
        if (generator.prefixCache().isOff() || r.generated.isEmpty()) return;
        int[][] runs = cache.realRuns(row, r.start);
        int count = 0;
        for (int[] run : runs) count += run[1];
        int fed = count - r.promptTokens;
        long[] ids = r.ids();
        if (fed < 0 || fed > ids.length) throw new IllegalStateException("row " + row + " holds " + count + " tokens for a prompt of " + r.promptTokens + " and " + ids.length + " generated");
        long[] sequence = Arrays.copyOf(r.request.prompt(), count);
        System.arraycopy(ids, 0, sequence, r.promptTokens, fed);
        cache.squeezeRow(row, runs, runs[0][0]); // padding for a longer newcomer split the row, which is leaving: close the gaps in place
        generator.prefixCache().store(sequence, r.request.adapter(), cache, row, runs[0][0]);
    }

    @Override
    public void close() {
        threads(prefillThreads);
        for (Prefill f : prefilling) {
            f.scratch.close();
            f.request.listener().onDone(new Generator.Completion(new long[0], "", "cancelled", f.request.prompt().length));
        }
        prefilling.clear();
        for (Joining j : joining) {
            j.scratch().close();
            rows.addAll(j.rows());
        }
        joining.clear();
        for (Row r : rows) {
            r.finish("cancelled");
            r.request.listener().onDone(r.completion());
        }
        rows.clear();
        if (cache != null) cache.close();
        cache = null;
    }

    /** One sequence's state: what it generated, what it streamed, where its tokens start in the cache. */
    private final class Row {
        final Request request;
        final Generator.GenerationParams params;
        final int promptTokens;
        final long[] stopIds;
        final BitSet seen = new BitSet();
        final Map<Integer, Integer> counts = new HashMap<>();
        final SplittableRandom random;
        final List<Long> generated = new ArrayList<>();
        int start;
        long lastToken;
        String text = "";
        int streamed;
        boolean done;
        String finishReason;
        TokenLogprobs logprobs; // of the token being accepted, when the listener asked for them

        Row(Request request, int start) {
            this.request = request;
            this.params = request.params();
            this.promptTokens = request.prompt().length;
            this.start = start;
            this.stopIds = generator.stopIds(params);
            for (long id : request.prompt()) seen.set((int) id);
            long seed = params.seed() != null ? params.seed() : System.nanoTime() ^ Thread.currentThread().threadId();
            this.random = new SplittableRandom(seed + request.sample() * GOLDEN);
        }

        void accept(long token) {
            if (done) return;
            lastToken = token;
            boolean last = generated.size() + 1 == params.maxTokens();
            for (long s : stopIds) {
                if (s == token) {
                    emit(token, text.length(), null); // nothing more can come: release what was held back
                    finish("stop");
                    return;
                }
            }
            generated.add(token);
            seen.set((int) token);
            counts.merge((int) token, 1, Integer::sum);
            text = tokenizer.decode(ids());
            int cut = firstStop(text);
            if (cut >= 0) {
                text = text.substring(0, cut);
                emit(token, text.length(), logprobs);
                finish("stop");
                return;
            }
            emit(token, last ? text.length() : safeLength(text), logprobs);
            if (last) finish("length");
        }

        /** Holds back text that may still become a stop string, and half-decoded UTF-8 (U+FFFD). */
        private int safeLength(String t) {
            int safe = t.length();
            while (safe > streamed && t.charAt(safe - 1) == '\uFFFD') safe--;
            for (String stop : params.stop()) {
                for (int k = Math.min(stop.length() - 1, t.length()); k > 0; k--) {
                    if (t.endsWith(stop.substring(0, k))) {
                        safe = Math.min(safe, t.length() - k);
                        break;
                    }
                }
            }
            return Math.max(safe, streamed);
        }

        private int firstStop(String t) {
            int best = -1;
            for (String stop : params.stop()) {
                int at = t.indexOf(stop);
                if (at >= 0 && (best < 0 || at < best)) best = at;
            }
            return best;
        }

        private void emit(long token, int upTo, TokenLogprobs tokenLogprobs) {
            String delta = upTo > streamed ? text.substring(streamed, upTo) : "";
            streamed = Math.max(streamed, upTo);
            request.listener().onToken(token, delta, tokenLogprobs);
        }

        void finish(String reason) {
            done = true;
            finishReason = reason;
        }

        long[] ids() {
            return generated.stream().mapToLong(Long::longValue).toArray();
        }

        Generator.Completion completion() {
            return new Generator.Completion(ids(), text, finishReason == null ? "length" : finishReason, promptTokens);
        }
    }
}
