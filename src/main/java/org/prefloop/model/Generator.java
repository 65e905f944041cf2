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
 * Text generation: a prefill of the prompts into a KV cache, then one decode step per token for
 * the whole batch ({@link DecodeBatch}, which sequences may also join and leave between steps).
 * Greedy picks happen on the native side (B ids cross to Java); sampling copies one row of logits
 * per sequence, which is small next to the weights read.
 */
public final class Generator {
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
    private final PrefixCache prefixes;
    private final LowRankStacks lowRankStacks;

    public Generator(LlamaModel model, TextTokenizer tokenizer) {
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.prefixes = new PrefixCache(model);
        this.lowRankStacks = new LowRankStacks(model.manager());
    }

    /** Shared prompt prefixes of this generator's batches; empty (budget 0) until a budget is set. */
    public PrefixCache prefixCache() {
        return prefixes;
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
     * already (0 disables them). {@code ignoreEos} (vLLM's name) keeps generating past the
     * tokenizer's end-of-sequence tokens, for benchmarks and tests that need a fixed length.
     */
    public record GenerationParams(int maxTokens, float temperature, float topP, int topK, float repetitionPenalty,
                                   Long seed, List<String> stop, long[] stopTokenIds,
                                   float frequencyPenalty, float presencePenalty, boolean ignoreEos) {
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
            this(maxTokens, temperature, topP, topK, repetitionPenalty, seed, stop, stopTokenIds, 0f, 0f, false);
        }

        public static GenerationParams greedy(int maxTokens) {
            return new GenerationParams(maxTokens, 0f, 1f, 0, 1f, null, List.of(), new long[0]);
        }

        public GenerationParams withStop(List<String> stopStrings) {
            return new GenerationParams(maxTokens, temperature, topP, topK, repetitionPenalty, seed, stopStrings, stopTokenIds,
                    frequencyPenalty, presencePenalty, ignoreEos);
        }

        public GenerationParams withMaxTokens(int tokens) {
            return new GenerationParams(tokens, temperature, topP, topK, repetitionPenalty, seed, stop, stopTokenIds,
                    frequencyPenalty, presencePenalty, ignoreEos);
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

    /**
     * Generates for all prompts together, as one batch from start to end: {@code onToken} hears
     * every token of every sequence (by its index in {@code prompts}). Sequence i draws from the
     * random stream {@code (seed, i)}, so seeded samples of one prompt differ across indices.
     */
    public List<Completion> generate(List<long[]> prompts, GenerationParams params, TokenListener onToken) {
        if (prompts.isEmpty()) return List.of();
        Completion[] out = new Completion[prompts.size()];
        List<DecodeBatch.Request> requests = new ArrayList<>();
        ProjectionHook adapter = model.projectionHook(); // the batch's rows run on the hook the model has now
        for (int i = 0; i < prompts.size(); i++) {
            int index = i;
            requests.add(new DecodeBatch.Request(prompts.get(i), params, i, new DecodeBatch.Listener() {
                public void onToken(long tokenId, String textDelta) {
                    if (onToken != null) onToken.onToken(index, tokenId, textDelta);
                }

                public void onDone(Completion completion) {
                    out[index] = completion;
                }
            }, adapter));
        }
        try (DecodeBatch batch = newBatch()) {
            batch.admit(requests);
            while (!batch.isEmpty()) batch.step();
        }
        return List.of(out);
    }

    /** An empty batch that sequences can join and leave between steps (continuous batching). */
    public DecodeBatch newBatch() {
        return new DecodeBatch(this, model, tokenizer);
    }

    /** Bytes of KV cache one token of one sequence takes (keys and values of every layer, float32). */
    public long kvBytesPerToken() {
        return KvCache.bytesPerToken(model.config(), DataType.FLOAT32);
    }

    public LlamaModel model() {
        return model;
    }

    /** The stacked adapter factors this generator's batches share (kept across batches: a batch often lives only while it has rows). */
    LowRankStacks lowRankStacks() {
        return lowRankStacks;
    }

    int decodeThreads() {
        return decodeThreads;
    }

    long[] stopIds(GenerationParams params) {
        long[] eos = params.ignoreEos() ? new long[0] : tokenizer.eosTokenIds();
        long[] extra = params.stopTokenIds();
        long[] all = Arrays.copyOf(eos, eos.length + extra.length);
        System.arraycopy(extra, 0, all, eos.length, extra.length);
        return all;
    }
}
