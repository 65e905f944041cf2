package org.prefloop.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A Llama-family decoder as Hugging Face's {@code config.json} describes it. Only what changes
 * the forward pass is kept; anything we do not implement is refused by name rather than
 * silently ignored, because a half-understood config produces a model that loads and talks nonsense.
 *
 * @param modelType llama, mistral, qwen2, qwen3 (SmolLM checkpoints say llama)
 * @param headDim per-head width; defaults to hidden_size / num_attention_heads
 * @param ropeScaling null, or the llama3 frequency rescaling
 * @param attentionBias q/k/v (and for Llama, o) projections carry biases; qwen2 always has q/k/v biases
 * @param eosTokenIds one or more ids that end generation
 * @param slidingWindow attention window in tokens, 0 for none (Mistral v0.1 style)
 */
public record ModelConfig(
        String modelType,
        int vocabSize,
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int numKeyValueHeads,
        int headDim,
        double rmsNormEps,
        double ropeTheta,
        RopeScaling ropeScaling,
        int maxPositionEmbeddings,
        boolean tieWordEmbeddings,
        boolean attentionBias,
        Long bosTokenId,
        long[] eosTokenIds,
        String torchDtype,
        int slidingWindow) {

    private static final Set<String> MODEL_TYPES = Set.of("llama", "mistral", "qwen2", "qwen3");

    /** Llama 3.1-style rescaling of the rotary frequencies for long contexts. */
    public record RopeScaling(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositionEmbeddings) {
    }

    public ModelConfig {
        if (!MODEL_TYPES.contains(modelType)) {
            throw new IllegalArgumentException("unsupported model_type '" + modelType + "' (supported: llama, mistral, qwen2, qwen3)");
        }
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", numHiddenLayers);
        positive("num_attention_heads", numAttentionHeads);
        positive("num_key_value_heads", numKeyValueHeads);
        positive("head_dim", headDim);
        positive("max_position_embeddings", maxPositionEmbeddings);
        if (numAttentionHeads % numKeyValueHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads " + numAttentionHeads
                    + " is not a multiple of num_key_value_heads " + numKeyValueHeads);
        }
        if (headDim % 2 != 0) throw new IllegalArgumentException("head_dim " + headDim + " must be even for rotary embeddings");
        if (!(rmsNormEps > 0)) throw new IllegalArgumentException("rms_norm_eps must be positive, got " + rmsNormEps);
        if (!(ropeTheta > 0)) throw new IllegalArgumentException("rope_theta must be positive, got " + ropeTheta);
        eosTokenIds = eosTokenIds == null ? new long[0] : eosTokenIds.clone();
        if (torchDtype == null) torchDtype = "float32";
    }

    private static void positive(String name, int value) {
        if (value <= 0) throw new IllegalArgumentException(name + " must be positive, got " + value);
    }

    /** A plain Llama config with the usual defaults; handy for tests and the demo model. */
    public static ModelConfig llama(int vocab, int hidden, int intermediate, int layers, int heads, int kvHeads) {
        return new ModelConfig("llama", vocab, hidden, intermediate, layers, heads, kvHeads, hidden / heads,
                1e-5, 10000.0, null, 2048, true, false, null, new long[0], "float32", 0);
    }

    /** Qwen3 normalises q and k per head before the rotary embedding. */
    public boolean qkNorm() {
        return modelType.equals("qwen3");
    }

    /** Qwen2 has q/k/v biases whatever attention_bias says; Llama-style configs opt in. */
    public boolean qkvBias() {
        return modelType.equals("qwen2") || attentionBias;
    }

    /** Llama's attention_bias also puts a bias on o_proj; Qwen's never. */
    public boolean outputBias() {
        return attentionBias && (modelType.equals("llama") || modelType.equals("mistral"));
    }

    // The withX copies edit the config.json this config writes and read it back: a config is its
    // config.json (equals compares them), and the canonical constructor checks the result.

    public ModelConfig withModelType(String type) {
        return with(j -> j.put("model_type", type));
    }

    public ModelConfig withHeadDim(int dim) {
        return with(j -> j.put("head_dim", dim));
    }

    public ModelConfig withRope(double theta, RopeScaling scaling) {
        return with(j -> {
            j.put("rope_theta", theta);
            j.set("rope_scaling", ropeScalingJson(scaling));
        });
    }

    public ModelConfig withTiedEmbeddings(boolean tied) {
        return with(j -> j.put("tie_word_embeddings", tied));
    }

    public ModelConfig withAttentionBias(boolean bias) {
        return with(j -> j.put("attention_bias", bias));
    }

    public ModelConfig withSpecialTokens(Long bos, long[] eos) {
        return with(j -> {
            j.remove("bos_token_id");
            j.remove("eos_token_id");
            addSpecialTokens(j, bos, eos);
        });
    }

    public ModelConfig withRmsNormEps(double eps) {
        return with(j -> j.put("rms_norm_eps", eps));
    }

    private ModelConfig with(Consumer<ObjectNode> change) {
        ObjectNode j = toJson();
        change.accept(j);
        return parse(j);
    }

    @Override
    public long[] eosTokenIds() {
        return eosTokenIds.clone();
    }

    public static ModelConfig read(Path configJson) {
        return parse(HfJson.readObject(configJson));
    }

    static ModelConfig parse(ObjectNode j) {
        String type = string(j, "model_type", null);
        if (type == null) throw new IllegalArgumentException("config.json has no model_type");
        String act = string(j, "hidden_act", "silu");
        if (!act.equals("silu")) throw new IllegalArgumentException("unsupported hidden_act '" + act + "' (only silu)");
        if (bool(j, "mlp_bias", false)) throw new IllegalArgumentException("unsupported option mlp_bias=true");
        if (j.has("pretraining_tp") && integer(j, "pretraining_tp", 1) != 1) {
            throw new IllegalArgumentException("unsupported option pretraining_tp=" + integer(j, "pretraining_tp", 1));
        }
        int window = 0;
        if (type.equals("mistral") && j.hasNonNull("sliding_window")) {
            window = HfJson.intValue(j.get("sliding_window"), "sliding_window");
        }
        if ((type.equals("qwen2") || type.equals("qwen3")) && bool(j, "use_sliding_window", false)) {
            throw new IllegalArgumentException("unsupported option use_sliding_window=true for " + type);
        }
        int hidden = integer(j, "hidden_size", 0);
        int heads = integer(j, "num_attention_heads", 0);
        int headDim = j.hasNonNull("head_dim") ? HfJson.intValue(j.get("head_dim"), "head_dim")
                : (heads > 0 ? hidden / heads : 0);
        RopeScaling scaling = null;
        if (j.has("rope_scaling") && j.get("rope_scaling").isObject()) {
            ObjectNode rs = (ObjectNode) j.get("rope_scaling");
            String ropeType = string(rs, "rope_type", string(rs, "type", "default"));
            if (ropeType.equals("llama3")) {
                scaling = new RopeScaling(HfJson.doubleValue(rs.get("factor"), "rope_scaling.factor"),
                        HfJson.doubleValue(rs.get("low_freq_factor"), "rope_scaling.low_freq_factor"),
                        HfJson.doubleValue(rs.get("high_freq_factor"), "rope_scaling.high_freq_factor"),
                        HfJson.intValue(rs.get("original_max_position_embeddings"), "rope_scaling.original_max_position_embeddings"));
            } else if (!ropeType.equals("default")) {
                throw new IllegalArgumentException("unsupported rope_scaling type '" + ropeType + "' (only llama3)");
            }
        }
        Long bos = j.hasNonNull("bos_token_id") ? HfJson.longValue(j.get("bos_token_id"), "bos_token_id") : null;
        long[] eos = new long[0];
        if (j.hasNonNull("eos_token_id")) {
            JsonNode e = j.get("eos_token_id");
            if (e.isArray()) {
                eos = new long[e.size()];
                for (int i = 0; i < eos.length; i++) eos[i] = HfJson.longValue(e.get(i), "eos_token_id[" + i + "]");
            } else {
                eos = new long[] {HfJson.longValue(e, "eos_token_id")};
            }
        }
        return new ModelConfig(type,
                integer(j, "vocab_size", 0),
                hidden,
                integer(j, "intermediate_size", 0),
                integer(j, "num_hidden_layers", 0),
                heads,
                integer(j, "num_key_value_heads", heads),
                headDim,
                j.has("rms_norm_eps") ? HfJson.doubleValue(j.get("rms_norm_eps"), "rms_norm_eps") : 1e-6,
                j.has("rope_theta") ? HfJson.doubleValue(j.get("rope_theta"), "rope_theta") : 10000.0,
                scaling,
                integer(j, "max_position_embeddings", 2048),
                bool(j, "tie_word_embeddings", false),
                bool(j, "attention_bias", false),
                bos, eos,
                string(j, "torch_dtype", "float32"),
                window);
    }

    /** The config.json transformers would accept for this model. */
    public ObjectNode toJson() {
        ObjectNode j = HfJson.newObject();
        String arch = switch (modelType) {
            case "mistral" -> "MistralForCausalLM";
            case "qwen2" -> "Qwen2ForCausalLM";
            case "qwen3" -> "Qwen3ForCausalLM";
            default -> "LlamaForCausalLM";
        };
        j.putArray("architectures").add(arch);
        j.put("model_type", modelType);
        j.put("vocab_size", vocabSize);
        j.put("hidden_size", hiddenSize);
        j.put("intermediate_size", intermediateSize);
        j.put("num_hidden_layers", numHiddenLayers);
        j.put("num_attention_heads", numAttentionHeads);
        j.put("num_key_value_heads", numKeyValueHeads);
        j.put("head_dim", headDim);
        j.put("hidden_act", "silu");
        j.put("rms_norm_eps", rmsNormEps);
        j.put("rope_theta", ropeTheta);
        j.set("rope_scaling", ropeScalingJson(ropeScaling));
        j.put("max_position_embeddings", maxPositionEmbeddings);
        j.put("tie_word_embeddings", tieWordEmbeddings);
        j.put("attention_bias", attentionBias);
        if (modelType.equals("mistral")) {
            if (slidingWindow > 0) j.put("sliding_window", slidingWindow);
            else j.putNull("sliding_window");
        }
        addSpecialTokens(j, bosTokenId, eosTokenIds);
        j.put("torch_dtype", torchDtype);
        return j;
    }

    private static JsonNode ropeScalingJson(RopeScaling scaling) {
        if (scaling == null) return NullNode.getInstance();
        ObjectNode rs = HfJson.newObject();
        rs.put("rope_type", "llama3");
        rs.put("factor", scaling.factor());
        rs.put("low_freq_factor", scaling.lowFreqFactor());
        rs.put("high_freq_factor", scaling.highFreqFactor());
        rs.put("original_max_position_embeddings", scaling.originalMaxPositionEmbeddings());
        return rs;
    }

    private static void addSpecialTokens(ObjectNode j, Long bos, long[] eos) {
        if (bos != null) j.put("bos_token_id", bos);
        if (eos == null) return;
        if (eos.length == 1) {
            j.put("eos_token_id", eos[0]);
        } else if (eos.length > 1) {
            ArrayNode a = j.putArray("eos_token_id");
            for (long e : eos) a.add(e);
        }
    }

    /** config.json as transformers writes it; members that are null are left out (null: not set). */
    public void write(Path configJson) {
        HfJson.writePretty(configJson, toJson());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ModelConfig c && toJson().equals(c.toJson());
    }

    @Override
    public int hashCode() {
        return toJson().hashCode();
    }

    @Override
    public String toString() {
        return "ModelConfig" + HfJson.compact(toJson()) + " eos=" + Arrays.toString(eosTokenIds);
    }

    private static String string(ObjectNode j, String key, String fallback) {
        return j.hasNonNull(key) ? HfJson.text(j.get(key), key) : fallback;
    }

    private static int integer(ObjectNode j, String key, int fallback) {
        return j.hasNonNull(key) ? HfJson.intValue(j.get(key), key) : fallback;
    }

    private static boolean bool(ObjectNode j, String key, boolean fallback) {
        return j.hasNonNull(key) ? HfJson.boolValue(j.get(key), key) : fallback;
    }
}
