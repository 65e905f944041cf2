package org.prefloop.train;

import org.prefloop.model.ModelConfig;

/**
 * Bytes a training stage needs, from the model's config alone (before anything is allocated), in
 * fp32: the weights, gradients and AdamW's two moments of what is trained, and activations kept
 * for backward. The activation term counts, per token and layer, the tensors this implementation
 * keeps (norms, q/k/v/o, the MLP's three projections and SiLU, attention scores and
 * probabilities), plus the scores over the vocabulary that SequenceLogProbs holds.
 */
public record MemoryEstimate(long weights, long gradients, long optimizer, long activations) {

    public long total() {
        return weights + gradients + optimizer + activations;
    }

    /**
     * @param trainableParameters parameters that get gradients (all of them for full fine-tuning, the adapter's for LoRA)
     * @param sequences           sequences in one micro-batch's forward (a DPO pair counts twice, plus its reference pass)
     */
    public static MemoryEstimate of(ModelConfig c, long trainableParameters, int sequences, int length) {
        long weights = 4 * parameters(c);
        long gradients = 4 * trainableParameters;
        long optimizer = 8 * trainableParameters;
        long kv = (long) c.numKeyValueHeads() * c.headDim();
        long q = (long) c.numAttentionHeads() * c.headDim();
        long perTokenLayer = 4L * c.hiddenSize() + 2 * q + 2 * kv + 4L * c.intermediateSize();
        long attention = 2L * c.numAttentionHeads() * length * length;
        long tokens = (long) sequences * length;
        // Scores over the vocabulary (SequenceLogProbs): with a frozen output projection (LoRA) one
        // chunk's logits, log-softmax and softmax at a time; a trained one keeps logits and
        // log-softmax for backward at every scored position (counted as every token).
        boolean frozenHead = trainableParameters < parameters(c);
        long chunkRows = Math.max(1, Math.min(tokens, SequenceLogProbs.chunkElements / c.vocabSize()));
        long vocabulary = frozenHead ? 3 * chunkRows * c.vocabSize() : 2 * tokens * c.vocabSize();
        long activations = 4 * (c.numHiddenLayers() * (tokens * perTokenLayer + sequences * attention) + vocabulary);
        return new MemoryEstimate(weights, gradients, optimizer, activations);
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
            case "fsdp", "deepspeed_zero3" -> new MemoryEstimate(ceil(weights, n), ceil(gradients, n), ceil(optimizer, n), activations);
            case "deepspeed_zero2" -> new MemoryEstimate(weights, ceil(gradients, n), ceil(optimizer, n), activations);
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
