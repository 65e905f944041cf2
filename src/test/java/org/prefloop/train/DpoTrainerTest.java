package org.prefloop.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** DPO on a LoRA adapter of a tiny model the project writes: it starts at ln 2, learns the preference, and leaves the base alone. */
class DpoTrainerTest {
    static final TokenizerSpec CHARS = TokenizerSpec.characters("abcdefghijklmnopqrstuvwxyz0123456789 +=");
    static final ModelConfig CONFIG = ModelConfig.llama(CHARS.characterVocabSize(), 48, 96, 2, 4, 2);

    /** Prompt "a+b=", chosen: the sum, rejected: the sum behind a stray "x" (a preference a tiny LoRA can learn). */
    static List<DpoTrainer.Pair> pairs(TextIds ids, int n, long seed) {
        Random rnd = new Random(seed);
        List<DpoTrainer.Pair> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int a = rnd.nextInt(50), b = rnd.nextInt(50);
            out.add(new DpoTrainer.Pair(ids.of(a + "+" + b + "="), ids.of(String.valueOf(a + b)), ids.of("x" + (a + b)), 1.0));
        }
        return out;
    }

    /** Character ids the way the tiny tokenizer assigns them. */
    record TextIds(org.prefloop.model.TextTokenizer tokenizer) {
        long[] of(String s) {
            return tokenizer.encode(s);
        }
    }

    private static Map<String, float[]> snapshot(LlamaModel model) {
        Map<String, float[]> out = new TreeMap<>();
        model.parameters().forEach((k, v) -> out.put(k, v.toFloatArray()));
        return out;
    }

    @Test
    void dpoStartsAtLn2LearnsThePreferenceAndLeavesTheBaseUntouched(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), CONFIG, 3, CHARS);
        try (LlamaModel model = LlamaModel.load(ckpt); var tokenizer = org.prefloop.model.TextTokenizer.load(ckpt)) {
            TextIds ids = new TextIds(tokenizer);
            List<DpoTrainer.Pair> train = pairs(ids, 16, 1);
            Map<String, float[]> before = snapshot(model);
            LoraAdapter policy = LoraAdapter.create(model, LoraAdapter.Config.of(8, 16,
                    List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), ckpt.toString()), 5, false);
            DpoTrainer.Settings settings = new DpoTrainer.Settings(0.5, DpoLoss.Type.SIGMOID, 0.0, 1e-2, 1.0);
            List<DpoTrainer.Step> steps = new ArrayList<>();
            try (DpoTrainer trainer = new DpoTrainer(model, policy, settings)) {
                for (int epoch = 0; epoch < 40; epoch++) {
                    for (int i = 0; i < train.size(); i += 8) steps.add(trainer.step(train.subList(i, i + 8)));
                }
            }
            assertEquals(Math.log(2), steps.get(0).loss(), 1e-6, "policy = reference at the first step");
            assertEquals(0.0, steps.get(0).rewardMargin(), 1e-6);
            DpoTrainer.Step last = steps.get(steps.size() - 1);
            assertTrue(last.loss() < 0.45, "loss fell from ln 2: " + last.loss());
            assertTrue(last.rewardAccuracy() >= 0.9, "reward accuracy " + last.rewardAccuracy());
            assertTrue(last.rewardMargin() > 0.5, "chosen-minus-rejected margin grew: " + last.rewardMargin());
            assertTrue(last.asTrlMetrics().keySet().containsAll(List.of("rewards/chosen", "rewards/rejected", "rewards/accuracies",
                    "rewards/margins", "logps/chosen", "logps/rejected", "grad_norm", "learning_rate")));
            Map<String, float[]> after = snapshot(model);
            before.forEach((k, v) -> assertArrayEquals(v, after.get(k), 0f, k + " is frozen"));
        }
    }

    @Test
    void aDivergingRunFailsWithAReason(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), CONFIG, 3, CHARS);
        try (LlamaModel model = LlamaModel.load(ckpt); var tokenizer = org.prefloop.model.TextTokenizer.load(ckpt)) {
            List<DpoTrainer.Pair> train = pairs(new TextIds(tokenizer), 4, 2);
            LoraAdapter policy = LoraAdapter.create(model, LoraAdapter.Config.of(4, 8, List.of("q_proj"), null), 5, true);
            try (DpoTrainer trainer = new DpoTrainer(model, policy, new DpoTrainer.Settings(0.1, DpoLoss.Type.SIGMOID, 0, Double.NaN, 1.0))) {
                trainer.step(train);
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> trainer.step(train));
                assertTrue(e.getMessage().contains("is NaN"), e.getMessage());
            }
        }
    }
}
