package org.prefloop.train;

import org.prefloop.model.ModelConfig;

/**
 * Peak resident bytes of a training stage, from the model's config alone (before anything is
 * allocated), in fp32: the runtime (JVM and libtorch), the weights, the one tensor being loaded
 * (mapped and converted), gradients and AdamW's two moments of what is trained, and the activations of a
 * micro-batch. The activation term counts, per token and layer, the arrays autograd saves for
 * backward (the forward closes every other array when its layer ends; with gradient
 * checkpointing, the layer inputs and one layer's arrays), plus the scores over the vocabulary
 * that SequenceLogProbs holds.
 */
public record MemoryEstimate(long runtime, long weights, long loading, long gradients, long optimizer, long activations) {
    /**
     * What the process holds before any model: the JVM with its heap in use, libtorch's code and
     * thread pools (measured: 337 MiB resident after the engine loads and runs a first op).
     */
    static final long RUNTIME = 350L << 20;

    /**
     * The peak: loading maps one tensor at a time (and converts half precision in a float32
     * scratch), released before the next (LlamaModel.load); training then holds gradients, optimizer state
     * and activations; the larger of the two sits on the runtime and the weights.
     */
    public long total() {
        return runtime + weights + Math.max(loading, gradients + optimizer + activations);
    }

    /**
     * @param trainableParameters parameters that get gradients (all of them for full fine-tuning, the adapter's for LoRA)
     * @param sequences           sequences in one micro-batch's forward (a DPO pair counts twice, plus its reference pass)
     */
    public static MemoryEstimate of(ModelConfig c, long trainableParameters, int sequences, int length) {
        return of(c, trainableParameters, sequences, length, false);
    }

    /**
     * With {@code gradientCheckpointing} the layers keep only their inputs ([tokens, hidden] each)
     * and one layer's intermediates exist at a time, during its recomputation.
     */
    public static MemoryEstimate of(ModelConfig c, long trainableParameters, int sequences, int length, boolean gradientCheckpointing) {
        long weights = 4 * parameters(c);
        long gradients = 4 * trainableParameters;
        long optimizer = 8 * trainableParameters;
        long kv = (long) c.numKeyValueHeads() * c.headDim();
        long q = (long) c.numAttentionHeads() * c.headDim();
        long h = c.hiddenSize(), i = c.intermediateSize();
        boolean frozenBase = trainableParameters < parameters(c);
        long tokens = (long) sequences * length;
        // Scores over the vocabulary (SequenceLogProbs): with a frozen output projection (LoRA) one
        // chunk's logits, log-softmax and softmax at a time; a trained one keeps the log-softmax for
        // backward at every scored position (counted as every token) and one chunk's logits.
        long chunkRows = Math.max(1, Math.min(tokens, SequenceLogProbs.chunkElements / c.vocabSize()));
        long vocabulary = frozenBase ? 3 * chunkRows * c.vocabSize() : (tokens + 2 * chunkRows) * c.vocabSize();
        long layers;
        if (gradientCheckpointing) {
            // every layer's input, and one layer run at a time: every array it creates while its
            // inputs and the gradients flowing back through it are alive (3x one layer fits the
            // measured peaks)
            layers = c.numHiddenLayers() * tokens * h + 3 * (tokens * createdPerTokenLayer(c, frozenBase) + sequences * 4L * c.numAttentionHeads() * length * length);
        } else {
            // The forward closes each layer's arrays when the layer ends (LlamaModel.hidden): what
            // stays is what autograd saved for backward, per token and layer: the layer's input and
            // both norms' input and output (4H; full fine-tuning also both normalised values its
            // weights' gradients need, 2H), the query as grouped for the scores and the attention
            // output o_proj multiplies (2q), keys and values (2kv), the MLP's SiLU slope
            // (LlamaModel.silu keeps one array, as F.silu does), SiLU, up and the gated product
            // (4I), and the attention probabilities (heads x keys).
            // Under glibc's dynamic mmap threshold (the default) measured peaks hold 1.7-1.8 times
            // that, in pages kept after freeing: counted as 7/4. With the fixed threshold
            // (TrainingAllocator, opt-in) they hold that and no more (MemoryEstimateBenchmark: 0.98
            // of the SmolLM2 rows).
            long saved = (frozenBase ? 4 : 6) * h + 2 * q + 2 * kv + 4 * i + (long) c.numAttentionHeads() * length;
            layers = c.numHiddenLayers() * tokens * saved;
            if (TrainingAllocator.configured() == 0) layers = layers * 7 / 4;
        }
        long activations = 4 * (layers + vocabulary);
        String dtype = c.torchDtype() == null ? "float32" : c.torchDtype();
        long largest = Math.max((long) c.vocabSize() * h, i * h); // the embedding, or an MLP projection
        boolean half = dtype.equals("bfloat16") || dtype.equals("float16");
        long loading = (half ? 2 + 4 : 4) * largest; // its mapped bytes, and a float32 scratch when stored in half precision
        return new MemoryEstimate(RUNTIME, weights, loading, gradients, optimizer, activations);
    }

    /**
     * Per token and layer, every array LlamaModel's forward creates in one layer without counting
     * attention's [keys]-wide arrays: two RMSNorms (square, normalised, scaled: 6H), two residual
     * sums (2H); q, k, v, o and the three MLP projections each make the product, and with LoRA the
     * adapter's delta, its scaling and the sum (4 apiece); rotary positions make 4.5 of q and of
     * k, the grouped layout one more q, attention's output and its layout 2q; SiLU and the gated
     * product 3I. (Attention's scores, scaled, masked and probabilities are 4 x heads x keys.)
     */
    private static long createdPerTokenLayer(ModelConfig c, boolean frozenBase) {
        long kv = (long) c.numKeyValueHeads() * c.headDim();
        long q = (long) c.numAttentionHeads() * c.headDim();
        long h = c.hiddenSize(), i = c.intermediateSize();
        long perProjection = frozenBase ? 4 : 1; // full fine-tuning: the product alone
        return 8 * h + perProjection * (q + 2 * kv + 2 * h + 2 * i) + (15 * q + 9 * kv) / 2 + 3 * i;
    }

    /**
     * The share of one of {@code processes} data-parallel processes under accelerate's
     * {@code config}: DDP keeps everything on every process; ZeRO-2 splits gradients and
     * optimizer state; FSDP and ZeRO-3 split the weights too. Activations stay per process
     * (each has its own micro-batch).
     */
    public MemoryEstimate perProcess(String config, int processes) {
        long n = Math.max(1, processes);
        return switch (config) {
            case "fsdp", "deepspeed_zero3" -> new MemoryEstimate(runtime, ceil(weights, n), ceil(loading, n), ceil(gradients, n), ceil(optimizer, n), activations);
            case "deepspeed_zero2" -> new MemoryEstimate(runtime, weights, loading, ceil(gradients, n), ceil(optimizer, n), activations);
            default -> this;
        };
    }

    private static long ceil(long bytes, long n) {
        return (bytes + n - 1) / n;
    }

    public static long parameters(ModelConfig c) {
        long h = c.hiddenSize(), q = (long) c.numAttentionHeads() * c.headDim(), kv = (long) c.numKeyValueHeads() * c.headDim();
        long layer = h * q + 2 * h * kv + q * h + 3 * h * c.intermediateSize() + 2 * h;
        long embed = (long) c.vocabSize() * h;
        return c.numHiddenLayers() * layer + embed * (c.tieWordEmbeddings() ? 1 : 2) + h;
    }

    /** Parameters of a LoRA adapter of rank r on the given target module names. */
    public static long loraParameters(ModelConfig c, int r, java.util.List<String> targets) {
        long h = c.hiddenSize(), q = (long) c.numAttentionHeads() * c.headDim(), kv = (long) c.numKeyValueHeads() * c.headDim(), i = c.intermediateSize();
        long perLayer = 0;
        for (String t : targets) {
            perLayer += switch (t) {
                case "q_proj" -> r * (h + q);
                case "k_proj", "v_proj" -> r * (h + kv);
                case "o_proj" -> r * (q + h);
                case "gate_proj", "up_proj", "down_proj" -> r * (h + i);
                default -> 0;
            };
        }
        return perLayer * c.numHiddenLayers();
    }

    /** Bytes in GiB, or MiB below one GiB. */
    public static String gib(long bytes) {
        return bytes >= (1L << 30) ? String.format("%.2f GiB", bytes / (double) (1L << 30)) : String.format("%.1f MiB", bytes / (double) (1L << 20));
    }
}
