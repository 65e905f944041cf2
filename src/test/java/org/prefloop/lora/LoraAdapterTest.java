package org.prefloop.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LoraAdapterTest {
    static final TokenizerSpec CHARS = TokenizerSpec.characters("0123456789+-=* ");
    static final ModelConfig CONFIG = ModelConfig.llama(CHARS.characterVocabSize(), 32, 64, 2, 4, 2);
    static final List<String> TARGETS = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    private static float[] logits(LlamaModel model, long[] ids) {
        try (NDManager scope = model.manager().newSubManager()) {
            NDArray input = scope.create(ids).reshape(1, ids.length);
            return model.logits(model.hidden(input, null, null)).toFloatArray();
        }
    }

    @Test
    void anAdapterSavedInPeftLayoutLoadsBackToTheSameOutputsAndMergesIntoTheSameModel(@TempDir Path tmp) throws Exception {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), CONFIG, 7, CHARS);
        long[] ids = {3, 5, 11, 2, 9, 4};
        float[] adapted;
        float[] plain;
        try (LlamaModel model = LlamaModel.load(ckpt)) {
            plain = logits(model, ids);
            LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(4, 8, TARGETS, ckpt.toString()), 3, true);
            model.setProjectionHook(adapter.hook());
            adapted = logits(model, ids);
            adapter.save(tmp.resolve("adapter"));
        }
        assertTrue(maxDiff(plain, adapted) > 1e-3, "a non-zero adapter changes the outputs");

        Set<String> keys = new TreeSet<>(org.prefloop.model.Safetensors.read(tmp.resolve("adapter/adapter_model.safetensors")).keySet());
        assertTrue(keys.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), keys.toString());
        assertTrue(keys.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"), keys.toString());
        assertEquals(2 * 2 * TARGETS.size(), keys.size(), "A and B for 7 modules in 2 layers");
        String config = Files.readString(tmp.resolve("adapter/adapter_config.json"));
        assertTrue(config.contains("\"peft_type\" : \"LORA\"") && config.contains("\"lora_alpha\" : 8.0"), config);

        try (LlamaModel model = LlamaModel.load(ckpt)) {
            LoraAdapter loaded = LoraAdapter.load(tmp.resolve("adapter"), model);
            model.setProjectionHook(loaded.hook());
            assertArrayEquals(adapted, logits(model, ids), 0f, "loading a saved adapter gives identical outputs");
            model.setProjectionHook(null);
            loaded.mergeInto(model);
            assertTrue(maxDiff(adapted, logits(model, ids)) < 1e-4, "the merged model computes what base + adapter computes");
        }
    }

    @Test
    void aFreshAdapterStartsEqualToTheBaseAndABrokenOneIsRefusedByName(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), CONFIG, 7, CHARS);
        long[] ids = {1, 2, 3};
        try (LlamaModel model = LlamaModel.load(ckpt)) {
            float[] plain = logits(model, ids);
            LoraAdapter fresh = LoraAdapter.create(model, LoraAdapter.Config.of(4, 8, List.of("q_proj", "v_proj"), null), 1, false);
            model.setProjectionHook(fresh.hook());
            assertArrayEquals(plain, logits(model, ids), 0f, "B = 0: the adapted model starts as the base");
            LoraAdapter wide = LoraAdapter.create(model, LoraAdapter.Config.of(8, 16, List.of("q_proj"), null), 1, true);
            wide.save(tmp.resolve("r8"));
            Path mislabeled = tmp.resolve("r8-says-4");
            wide.save(mislabeled);
            try {
                Files.writeString(mislabeled.resolve("adapter_config.json"),
                        Files.readString(mislabeled.resolve("adapter_config.json")).replace("\"r\" : 8", "\"r\" : 4"));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LoraAdapter.load(mislabeled, model));
            assertTrue(e.getMessage().contains("lora_A.weight has shape"), e.getMessage());
        }
    }

    private static float maxDiff(float[] a, float[] b) {
        float m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }
}
