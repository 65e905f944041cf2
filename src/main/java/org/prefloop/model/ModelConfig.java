package org.prefloop.model;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
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
        return with(j -> j.addProperty("model_type", type));
    }

    public ModelConfig withHeadDim(int dim) {
        return with(j -> j.addProperty("head_dim", dim));
    }

    public ModelConfig withRope(double theta, RopeScaling scaling) {
        return with(j -> {
            j.addProperty("rope_theta", theta);
            j.add("rope_scaling", ropeScalingJson(scaling));
        });
    }

    public ModelConfig withTiedEmbeddings(boolean tied) {
        return with(j -> j.addProperty("tie_word_embeddings", tied));
    }

    public ModelConfig withAttentionBias(boolean bias) {
        return with(j -> j.addProperty("attention_bias", bias));
    }

    public ModelConfig withSpecialTokens(Long bos, long[] eos) {
        return with(j -> {
            j.remove("bos_token_id");
            j.remove("eos_token_id");
            addSpecialTokens(j, bos, eos);
        });
    }

    public ModelConfig withRmsNormEps(double eps) {
        return with(j -> j.addProperty("rms_norm_eps", eps));
    }

    private ModelConfig with(Consumer<JsonObject> change) {
        JsonObject j = toJson();
        change.accept(j);
        return parse(j);
    }

    @Override
    public long[] eosTokenIds() {
        return eosTokenIds.clone();
    }

    public static ModelConfig read(Path configJson) {
        String text;
        try {
            text = Files.readString(configJson, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + configJson, e);
        }
        return parse(JsonParser.parseString(text).getAsJsonObject());
    }

    static ModelConfig parse(JsonObject j) {
        String type = string(j, "model_type", null);
        if (type == null) throw new IllegalArgumentException("config.json has no model_type");
        String act = string(j, "hidden_act", "silu");
        if (!act.equals("silu")) throw new IllegalArgumentException("unsupported hidden_act '" + act + "' (only silu)");
        if (bool(j, "mlp_bias", false)) throw new IllegalArgumentException("unsupported option mlp_bias=true");
        if (j.has("pretraining_tp") && integer(j, "pretraining_tp", 1) != 1) {
            throw new IllegalArgumentException("unsupported option pretraining_tp=" + integer(j, "pretraining_tp", 1));
        }
        int window = 0;
        if (type.equals("mistral") && j.has("sliding_window") && !j.get("sliding_window").isJsonNull()) {
            window = j.get("sliding_window").getAsInt();
        }
        if ((type.equals("qwen2") || type.equals("qwen3")) && bool(j, "use_sliding_window", false)) {
            throw new IllegalArgumentException("unsupported option use_sliding_window=true for " + type);
        }
        int hidden = integer(j, "hidden_size", 0);
        int heads = integer(j, "num_attention_heads", 0);
        int headDim = j.has("head_dim") && !j.get("head_dim").isJsonNull() ? j.get("head_dim").getAsInt()
                : (heads > 0 ? hidden / heads : 0);
        RopeScaling scaling = null;
        if (j.has("rope_scaling") && j.get("rope_scaling").isJsonObject()) {
            JsonObject rs = j.getAsJsonObject("rope_scaling");
            String ropeType = string(rs, "rope_type", string(rs, "type", "default"));
            if (ropeType.equals("llama3")) {
                scaling = new RopeScaling(rs.get("factor").getAsDouble(), rs.get("low_freq_factor").getAsDouble(),
                        rs.get("high_freq_factor").getAsDouble(), rs.get("original_max_position_embeddings").getAsInt());
            } else if (!ropeType.equals("default")) {
                throw new IllegalArgumentException("unsupported rope_scaling type '" + ropeType + "' (only llama3)");
            }
        }
        Long bos = j.has("bos_token_id") && !j.get("bos_token_id").isJsonNull() ? j.get("bos_token_id").getAsLong() : null;
        long[] eos = new long[0];
        if (j.has("eos_token_id") && !j.get("eos_token_id").isJsonNull()) {
            JsonElement e = j.get("eos_token_id");
            if (e.isJsonArray()) {
                JsonArray a = e.getAsJsonArray();
                eos = new long[a.size()];
                for (int i = 0; i < eos.length; i++) eos[i] = a.get(i).getAsLong();
            } else {
                eos = new long[] {e.getAsLong()};
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
                j.has("rms_norm_eps") ? j.get("rms_norm_eps").getAsDouble() : 1e-6,
                j.has("rope_theta") ? j.get("rope_theta").getAsDouble() : 10000.0,
                scaling,
                integer(j, "max_position_embeddings", 2048),
                bool(j, "tie_word_embeddings", false),
                bool(j, "attention_bias", false),
                bos, eos,
                string(j, "torch_dtype", "float32"),
                window);
    }

    /** The config.json transformers would accept for this model. */
    public JsonObject toJson() {
        JsonObject j = new JsonObject();
        String arch = switch (modelType) {
            case "mistral" -> "MistralForCausalLM";
            case "qwen2" -> "Qwen2ForCausalLM";
            case "qwen3" -> "Qwen3ForCausalLM";
            default -> "LlamaForCausalLM";
        };
        JsonArray archs = new JsonArray();
        archs.add(arch);
        j.add("architectures", archs);
        j.addProperty("model_type", modelType);
        j.addProperty("vocab_size", vocabSize);
        j.addProperty("hidden_size", hiddenSize);
        j.addProperty("intermediate_size", intermediateSize);
        j.addProperty("num_hidden_layers", numHiddenLayers);
        j.addProperty("num_attention_heads", numAttentionHeads);
        j.addProperty("num_key_value_heads", numKeyValueHeads);
        j.addProperty("head_dim", headDim);
        j.addProperty("hidden_act", "silu");
        j.addProperty("rms_norm_eps", rmsNormEps);
        j.addProperty("rope_theta", ropeTheta);
        j.add("rope_scaling", ropeScalingJson(ropeScaling));
        j.addProperty("max_position_embeddings", maxPositionEmbeddings);
        j.addProperty("tie_word_embeddings", tieWordEmbeddings);
        j.addProperty("attention_bias", attentionBias);
        if (modelType.equals("mistral")) {
            if (slidingWindow > 0) j.addProperty("sliding_window", slidingWindow);
            else j.add("sliding_window", JsonNull.INSTANCE);
        }
        addSpecialTokens(j, bosTokenId, eosTokenIds);
        j.addProperty("torch_dtype", torchDtype);
        return j;
    }

    private static JsonElement ropeScalingJson(RopeScaling scaling) {
        if (scaling == null) return JsonNull.INSTANCE;
        JsonObject rs = new JsonObject();
        rs.addProperty("rope_type", "llama3");
        rs.addProperty("factor", scaling.factor());
        rs.addProperty("low_freq_factor", scaling.lowFreqFactor());
        rs.addProperty("high_freq_factor", scaling.highFreqFactor());
        rs.addProperty("original_max_position_embeddings", scaling.originalMaxPositionEmbeddings());
        return rs;
    }

    private static void addSpecialTokens(JsonObject j, Long bos, long[] eos) {
        if (bos != null) j.addProperty("bos_token_id", bos);
        if (eos == null) return;
        if (eos.length == 1) {
            j.addProperty("eos_token_id", eos[0]);
        } else if (eos.length > 1) {
            JsonArray a = new JsonArray();
            for (long e : eos) a.add(e);
            j.add("eos_token_id", a);
        }
    }

    public void write(Path configJson) {
        Gson gson = new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create();
        try {
            Files.writeString(configJson, gson.toJson(toJson()) + "\n", StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + configJson, e);
        }
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
        return "ModelConfig" + toJson() + " eos=" + Arrays.toString(eosTokenIds);
    }

    private static String string(JsonObject j, String key, String fallback) {
        return j.has(key) && !j.get(key).isJsonNull() ? j.get(key).getAsString() : fallback;
    }

    private static int integer(JsonObject j, String key, int fallback) {
        return j.has(key) && !j.get(key).isJsonNull() ? j.get(key).getAsInt() : fallback;
    }

    private static boolean bool(JsonObject j, String key, boolean fallback) {
        return j.has(key) && !j.get(key).isJsonNull() ? j.get(key).getAsBoolean() : fallback;
    }
}
