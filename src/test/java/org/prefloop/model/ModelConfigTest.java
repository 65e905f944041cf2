package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** config.json files shaped like the ones the supported families publish. */
class ModelConfigTest {
    static final String LLAMA_32_1B = """
            {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
             "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 64,
             "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
             "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
             "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
             "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
             "original_max_position_embeddings": 8192, "rope_type": "llama3"}, "rope_theta": 500000.0,
             "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 128256}
            """;
    static final String QWEN3_06B = """
            {"architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "bos_token_id": 151643,
             "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024,
             "intermediate_size": 3072, "max_position_embeddings": 40960, "max_window_layers": 28,
             "model_type": "qwen3", "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
             "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
             "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_sliding_window": false, "vocab_size": 151936}
            """;
    static final String MISTRAL_7B_V01 = """
            {"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
             "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
             "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
             "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
             "vocab_size": 32000}
            """;

    @TempDir
    Path tmp;

    private ModelConfig read(String json) throws Exception {
        Path f = tmp.resolve("config.json");
        Files.writeString(f, json);
        return ModelConfig.read(f);
    }

    @Test
    void llama32WithLlama3RopeScalingAndSeveralEosIds() throws Exception {
        ModelConfig c = read(LLAMA_32_1B);
        assertEquals(new ModelConfig.RopeScaling(32.0, 1.0, 4.0, 8192), c.ropeScaling());
        assertArrayEquals(new long[] {128001, 128008, 128009}, c.eosTokenIds());
        assertEquals(128000L, c.bosTokenId());
        assertEquals(8, c.numKeyValueHeads());
        assertTrue(c.tieWordEmbeddings());
        assertFalse(c.qkvBias());
        assertFalse(c.qkNorm());
    }

    @Test
    void qwen3HasAnExplicitHeadDimAndQkNorms() throws Exception {
        ModelConfig c = read(QWEN3_06B);
        assertEquals(128, c.headDim(), "not hidden/heads = 64");
        assertTrue(c.qkNorm());
        assertFalse(c.qkvBias());
        assertNull(c.ropeScaling());
        assertEquals(1e-6, c.rmsNormEps());
        assertEquals(1_000_000.0, c.ropeTheta());
    }

    @Test
    void qwen2AlwaysHasQkvBiasesAndMistralKeepsItsWindow() throws Exception {
        assertTrue(read(QWEN3_06B.replace("\"qwen3\"", "\"qwen2\"")).qkvBias());
        ModelConfig mistral = read(MISTRAL_7B_V01);
        assertEquals(4096, mistral.slidingWindow());
        assertEquals(128, mistral.headDim());
        assertFalse(mistral.tieWordEmbeddings());
    }

    @Test
    void writeThenReadGivesTheSameConfig() throws Exception {
        ModelConfig c = read(LLAMA_32_1B);
        Path out = tmp.resolve("out.json");
        c.write(out);
        assertEquals(c, ModelConfig.read(out));
        assertEquals("llama3", new ObjectMapper().readTree(Files.readString(out)).get("rope_scaling").get("rope_type").asText());
    }

    @Test
    void unsupportedArchitecturesAndOptionsAreRefusedByName() {
        assertRefused(QWEN3_06B.replace("\"qwen3\"", "\"gemma2\""), "gemma2");
        assertRefused(LLAMA_32_1B.replace("\"llama3\"", "\"yarn\""), "yarn");
        assertRefused(LLAMA_32_1B.replace("\"silu\"", "\"gelu\""), "gelu");
        assertRefused(LLAMA_32_1B.replace("\"mlp_bias\": false", "\"mlp_bias\": true"), "mlp_bias");
        assertRefused(QWEN3_06B.replace("\"use_sliding_window\": false", "\"use_sliding_window\": true"), "use_sliding_window");
        assertRefused(LLAMA_32_1B.replace("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5"), "num_key_value_heads");
    }

    private void assertRefused(String json, String name) {
        var e = assertThrows(IllegalArgumentException.class, () -> read(json));
        assertTrue(e.getMessage().contains(name), e.getMessage());
    }
}
