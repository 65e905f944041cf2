package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Weight decay spares biases and normalisation gains, as the transformers Trainer does. */
class AdamWTest {

    @Test
    void decayNamesFollowTheTransformersTrainer() {
        for (String no : new String[]{"model.layers.0.input_layernorm.weight", "model.layers.3.post_attention_layernorm.weight",
                "model.norm.weight", "model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight",
                "model.layers.0.self_attn.q_proj.bias"}) {
            assertFalse(AdamW.decays(no), no);
        }
        for (String yes : new String[]{"model.embed_tokens.weight", "lm_head.weight", "model.layers.0.self_attn.q_proj.weight",
                "model.layers.0.mlp.down_proj.weight", "model.layers.0.self_attn.q_proj.lora_A.weight"}) {
            assertTrue(AdamW.decays(yes), yes);
        }
    }

    /** With zero gradients only decay moves a weight: projections shrink by 1 - lr * decay, norms and biases stay. */
    @Test
    void fullFineTuningDecaysNeitherNormsNorBiases(@TempDir Path tmp) {
        TokenizerSpec chars = TokenizerSpec.characters("abcdefgh");
        ModelConfig c = ModelConfig.llama(chars.characterVocabSize(), 16, 32, 1, 2, 1).withModelType("qwen2");
        Path dir = TinyCheckpoint.write(tmp.resolve("m"), c, 5, chars);
        try (LlamaModel model = LlamaModel.load(dir); AdamW adamw = new AdamW(0.9, 0.999, 1e-8, 0.5)) {
            Map<String, NDArray> params = Trainable.full(model).parameters();
            Map<String, float[]> before = new LinkedHashMap<>();
            params.forEach((k, p) -> before.put(k, p.toFloatArray()));
            try (NDManager scope = model.manager().newSubManager(); GradientCollector g = Engine.getInstance().newGradientCollector()) {
                NDArray zero = scope.zeros(new ai.djl.ndarray.types.Shape());
                for (NDArray p : params.values()) zero = zero.add(p.mul(0f).sum());
                g.backward(zero);
            }
            adamw.update(params, 0.1);
            int norms = 0, biases = 0;
            for (var e : params.entrySet()) {
                float[] b = before.get(e.getKey()), a = e.getValue().toFloatArray();
                if (AdamW.decays(e.getKey())) {
                    for (int i = 0; i < b.length; i++) assertEquals(b[i] * 0.95f, a[i], 1e-6f, e.getKey());
                } else {
                    assertArrayEquals(b, a, e.getKey());
                    if (e.getKey().contains("norm")) norms++;
                    if (e.getKey().endsWith("bias")) biases++;
                }
            }
            assertTrue(norms >= 3 && biases == 3, "norm gains and biases were among the parameters: " + norms + ", " + biases);
        }
    }
}
