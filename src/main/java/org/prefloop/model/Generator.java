package org.prefloop.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Text generation: one prefill of the (left-padded) prompts into a KV cache, then one decode
 * step per token for the whole batch. Greedy picks happen on the native side (B ids cross to
 * Java); sampling copies one row of logits per sequence, which is small next to the weights read.
 */
public final class Generator {
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    /**
     * Intra-op threads for decode steps (prefill keeps the engine's setting). A decode step is a
     * chain of tiny ops around bandwidth-bound matrix-vector products; on shared cores every op
     * that enters libtorch's thread pool waits for a descheduled worker (measured here: softmax of
     * 1,440 scores 2.2 ms on two threads, 3.5 µs on one), so one thread decodes faster.
     * {@code -Dprefloop.decode.threads=N} overrides it.
     */
    static final int DEFAULT_DECODE_THREADS = Integer.getInteger("prefloop.decode.threads", 1);

    private final LlamaModel model;
    private final TextTokenizer tokenizer;
    private int decodeThreads = DEFAULT_DECODE_THREADS;

    public Generator(LlamaModel model, TextTokenizer tokenizer) {
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
    }

    /**
     * How to pick tokens. temperature 0 is greedy; topK 0 and topP 1 disable those filters;
     * repetitionPenalty 1 disables it (Hugging Face's definition: positive logits of seen tokens
     * divided by it, negative ones multiplied). Generation stops at the tokenizer's eos ids, at
     * {@code stopTokenIds}, or when the text contains one of {@code stop} (cut before it).
     */
    /** Intra-op threads for decode steps; see {@link #DEFAULT_DECODE_THREADS}. */
    public void setDecodeThreads(int threads) {
        if (threads <= 0) throw new IllegalArgumentException("decode threads must be positive, got " + threads);
        this.decodeThreads = threads;
    }

    /**
     * {@code frequencyPenalty} and {@code presencePenalty} follow OpenAI: a generated token's logit
     * loses {@code count * frequencyPenalty + presencePenalty} for each time it was generated
     * already (0 disables them).
     */
    public record GenerationParams(int maxTokens, float temperature, float topP, int topK, float repetitionPenalty,
                                   Long seed, List<String> stop, long[] stopTokenIds,
                                   float frequencyPenalty, float presencePenalty) {
        public GenerationParams {
            if (maxTokens <= 0) throw new IllegalArgumentException("maxTokens must be positive, got " + maxTokens);
            if (!(temperature >= 0) || Float.isInfinite(temperature)) {
                throw new IllegalArgumentException("temperature must be finite and >= 0, got " + temperature);
            }
            if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
            if (topK < 0) throw new IllegalArgumentException("topK must be >= 0, got " + topK);
            if (!(repetitionPenalty > 0) || Float.isInfinite(repetitionPenalty)) {
                throw new IllegalArgumentException("repetitionPenalty must be positive, got " + repetitionPenalty);
            }
            if (!Float.isFinite(frequencyPenalty)) throw new IllegalArgumentException("frequencyPenalty must be finite, got " + frequencyPenalty);
            if (!Float.isFinite(presencePenalty)) throw new IllegalArgumentException("presencePenalty must be finite, got " + presencePenalty);
            stop = stop == null ? List.of() : List.copyOf(stop);
            if (stop.stream().anyMatch(String::isEmpty)) throw new IllegalArgumentException("a stop string is empty");
            stopTokenIds = stopTokenIds == null ? new long[0] : stopTokenIds.clone();
        }

        public GenerationParams(int maxTokens, float temperature, float topP, int topK, float repetitionPenalty,
                                Long seed, List<String> stop, long[] stopTokenIds) {
            this(maxTokens, temperature, topP, topK, repetitionPenalty, seed, stop, stopTokenIds, 0f, 0f);
        }

        public static GenerationParams greedy(int maxTokens) {
            return new GenerationParams(maxTokens, 0f, 1f, 0, 1f, null, List.of(), new long[0]);
        }

        public GenerationParams withStop(List<String> stopStrings) {
            return new GenerationParams(maxTokens, temperature, topP, topK, repetitionPenalty, seed, stopStrings, stopTokenIds,
                    frequencyPenalty, presencePenalty);
        }

        public GenerationParams withMaxTokens(int tokens) {
            return new GenerationParams(tokens, temperature, topP, topK, repetitionPenalty, seed, stop, stopTokenIds,
                    frequencyPenalty, presencePenalty);
        }

        boolean isGreedy() {
            return temperature == 0f;
        }

        /** Greedy with no penalty: the pick can stay on the native side. */
        boolean isPlainGreedy() {
            return temperature == 0f && repetitionPenalty == 1f && frequencyPenalty == 0f && presencePenalty == 0f;
        }

        @Override
        public long[] stopTokenIds() {
            return stopTokenIds.clone();
        }
    }

    /**
     * One finished sequence. {@code tokenIds} are the generated ids without the prompt and without
     * the eos/stop token that ended it; {@code text} is cut before a matched stop string.
     */
    public record Completion(long[] tokenIds, String text, String finishReason, int promptTokens) {
    }

    /**
     * Called once per generated token of each sequence, the ending eos/stop token included, with
     * the text it releases: empty while a possible stop-string prefix or half a UTF-8 character is
     * held back, more than one token's text once released. The deltas of a sequence concatenate to
     * its completion text.
     */
    @FunctionalInterface
    public interface TokenListener {
        void onToken(int sequence, long tokenId, String textDelta);
    }

    public Completion generate(long[] prompt, GenerationParams params) {
        return generate(List.of(prompt), params, null).get(0);
    }

    public List<Completion> generate(List<long[]> prompts, GenerationParams params, TokenListener onToken) {
        if (prompts.isEmpty()) return List.of();
        int batch = prompts.size();
        int longest = 0;
        for (int i = 0; i < batch; i++) {
            long[] p = prompts.get(i);
            if (p.length == 0) throw new IllegalArgumentException("prompt " + i + " is empty");
            for (long id : p) {
                if (id < 0 || id >= model.config().vocabSize()) {
                    throw new IllegalArgumentException("prompt " + i + " has token id " + id + " outside the vocabulary");
                }
            }
            longest = Math.max(longest, p.length);
        }
        long[] stopIds = stopIds(params);
        Sequence[] seqs = new Sequence[batch];
        for (int i = 0; i < batch; i++) {
            seqs[i] = new Sequence(i, prompts.get(i), params, onToken);
        }
        boolean wasGrad = JniUtils.isGradMode();
        int threads = JniUtils.getNumThreads();
        JniUtils.setGradMode(false); // no graph: generation never backpropagates, and graphs hold memory
        try (NDManager manager = model.manager().newSubManager();
             KvCache cache = model.newCache(batch, longest + params.maxTokens())) {
            // left padding keeps every row's newest token in the last column, so each step reads one column
            long[][] ids = new long[batch][longest];
            long[][] mask = new long[batch][longest];
            for (int i = 0; i < batch; i++) {
                long[] p = prompts.get(i);
                int pad = longest - p.length;
                System.arraycopy(p, 0, ids[i], pad, p.length);
                Arrays.fill(mask[i], pad, longest, 1);
            }
            NDArray stepIds = manager.create(ids);
            NDArray stepMask = manager.create(mask);
            NDArray ones = manager.ones(new Shape(batch, 1), DataType.INT64);
            for (int step = 0; step < params.maxTokens(); step++) {
                long[] next;
                if (step == 1) JniUtils.setNumThreads(decodeThreads);
                try (NDScope scope = new NDScope()) {
                    NDArray hidden = model.hidden(stepIds, stepMask, cache);
                    NDArray last = hidden.get(new NDIndex(":, -1:, :"));
                    NDArray logits = model.logits(last).reshape(batch, -1);
                    next = pick(logits, seqs, params);
                }
                boolean allDone = true;
                for (int i = 0; i < batch; i++) {
                    if (!seqs[i].done) seqs[i].accept(next[i], stopIds, step + 1 == params.maxTokens());
                    allDone &= seqs[i].done;
                }
                if (allDone) break;
                stepIds.close();
                stepIds = manager.create(next, new Shape(batch, 1));
                stepMask = ones;
            }
        } finally {
            JniUtils.setNumThreads(threads);
            JniUtils.setGradMode(wasGrad);
        }
        List<Completion> out = new ArrayList<>(batch);
        for (Sequence s : seqs) out.add(s.completion());
        return out;
    }

    private long[] stopIds(GenerationParams params) {
        long[] eos = tokenizer.eosTokenIds();
        long[] extra = params.stopTokenIds();
        long[] all = Arrays.copyOf(eos, eos.length + extra.length);
        System.arraycopy(extra, 0, all, eos.length, extra.length);
        return all;
    }

    private long[] pick(NDArray logits, Sequence[] seqs, GenerationParams params) {
        if (params.isPlainGreedy()) {
            return logits.argMax(1).toLongArray();
        }
        int batch = seqs.length;
        int vocab = (int) logits.getShape().get(1);
        float[] all = logits.toType(DataType.FLOAT32, false).toFloatArray();
        long[] next = new long[batch];
        for (int i = 0; i < batch; i++) {
            if (seqs[i].done) continue;
            float[] row = Arrays.copyOfRange(all, i * vocab, (i + 1) * vocab);
            next[i] = Sampling.choose(row, seqs[i].seen, seqs[i].counts, params, seqs[i].random);
        }
        return next;
    }

    /** The state of one row of the batch: what it generated, what it streamed, whether it ended. */
    private final class Sequence {
        final int index;
        final int promptTokens;
        final BitSet seen = new BitSet();
        final java.util.Map<Integer, Integer> counts = new java.util.HashMap<>();
        final SplittableRandom random;
        final GenerationParams params;
        final TokenListener listener;
        final List<Long> generated = new ArrayList<>();
        String text = "";
        int streamed;
        boolean done;
        String finishReason;

        Sequence(int index, long[] prompt, GenerationParams params, TokenListener listener) {
            this.index = index;
            this.promptTokens = prompt.length;
            this.params = params;
            this.listener = listener;
            for (long id : prompt) seen.set((int) id);
            long seed = params.seed() != null ? params.seed() : System.nanoTime() ^ Thread.currentThread().threadId();
            this.random = new SplittableRandom(seed + index * GOLDEN);
        }

        void accept(long token, long[] stopIds, boolean last) {
            for (long s : stopIds) {
                if (s == token) {
                    emit(token, text.length()); // nothing more can come: release what was held back
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
                emit(token, text.length());
                finish("stop");
                return;
            }
            emit(token, last ? text.length() : safeLength(text));
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

        private void emit(long token, int upTo) {
            if (listener == null) return;
            String delta = upTo > streamed ? text.substring(streamed, upTo) : "";
            streamed = Math.max(streamed, upTo);
            listener.onToken(index, token, delta);
        }

        private void finish(String reason) {
            done = true;
            finishReason = reason;
        }

        long[] ids() {
            return generated.stream().mapToLong(Long::longValue).toArray();
        }

        Completion completion() {
            return new Completion(ids(), text, finishReason == null ? "length" : finishReason, promptTokens);
        }
    }
}
