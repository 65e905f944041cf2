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
            DpoTrainer.Settings settings = new DpoTrainer.Settings(DpoLoss.Objective.sigmoid(0.5), 1.0);
            List<DpoTrainer.Step> steps = new ArrayList<>();
            try (DpoTrainer trainer = new DpoTrainer(model, Trainable.lora(policy), AdamW.defaults(), settings)) {
                for (int epoch = 0; epoch < 40; epoch++) {
                    for (int i = 0; i < train.size(); i += 8) steps.add(trainer.step(train.subList(i, i + 8), 1, 1e-2));
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
            try (DpoTrainer trainer = new DpoTrainer(model, Trainable.lora(policy), AdamW.defaults(), new DpoTrainer.Settings(DpoLoss.Objective.sigmoid(0.1), 1.0))) {
                trainer.step(train, 1, Double.NaN);
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> trainer.step(train, 1, Double.NaN));
                assertTrue(e.getMessage().contains("is NaN"), e.getMessage());
            }
        }
    }

    /** Trains a fresh adapter from the same seed for a few steps; returns its weights afterwards. */
    private static Map<String, float[]> trainedAdapter(Path ckpt, List<DpoTrainer.Pair> train, int accumulation, boolean precompute) {
        try (LlamaModel model = LlamaModel.load(ckpt)) {
            LoraAdapter policy = LoraAdapter.create(model, LoraAdapter.Config.of(4, 8, List.of("q_proj", "v_proj", "down_proj"), null), 5, true);
            List<DpoTrainer.Pair> pairs = precompute ? DpoTrainer.withReference(model, train, 3) : train;
            try (DpoTrainer trainer = new DpoTrainer(model, Trainable.lora(policy), AdamW.defaults(), DpoTrainer.Settings.defaults())) {
                for (int s = 0; s < 3; s++) trainer.step(pairs, accumulation, 1e-2);
            }
            Map<String, float[]> out = new TreeMap<>();
            policy.weights().forEach((k, ab) -> {
                out.put(k + ".A", ab[0].toFloatArray());
                out.put(k + ".B", ab[1].toFloatArray());
            });
            policy.close();
            return out;
        }
    }

    @Test
    void accumulatingFourMicroBatchesOfTwoGivesTheUpdateOfOneBatchOfEight(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), CONFIG, 3, CHARS);
        List<DpoTrainer.Pair> train;
        try (var tokenizer = org.prefloop.model.TextTokenizer.load(ckpt)) {
            train = new ArrayList<>(pairs(new TextIds(tokenizer), 8, 4));
        }
        // unequal weights, so that the micro-batches' shares of the loss matter
        for (int i = 0; i < train.size(); i++) {
            DpoTrainer.Pair p = train.get(i);
            train.set(i, new DpoTrainer.Pair(p.prompt(), p.chosen(), p.rejected(), 0.5 + i * 0.25));
        }
        Map<String, float[]> whole = trainedAdapter(ckpt, train, 1, false);
        Map<String, float[]> accumulated = trainedAdapter(ckpt, train, 4, false);
        Map<String, float[]> precomputed = trainedAdapter(ckpt, train, 1, true);
        double moved = 0;
        for (String k : whole.keySet()) {
            assertArrayEquals(whole.get(k), accumulated.get(k), 2e-5f, k + ": 4 x 2 accumulated vs 8 at once");
            assertArrayEquals(whole.get(k), precomputed.get(k), 2e-5f, k + ": precomputed reference log-probs vs the adapter switched off");
        }
        try (LlamaModel model = LlamaModel.load(ckpt)) {
            LoraAdapter fresh = LoraAdapter.create(model, LoraAdapter.Config.of(4, 8, List.of("q_proj", "v_proj", "down_proj"), null), 5, true);
            for (var e : fresh.weights().entrySet()) {
                float[] b0 = e.getValue()[1].toFloatArray(), b1 = whole.get(e.getKey() + ".B");
                for (int i = 0; i < b0.length; i++) moved = Math.max(moved, Math.abs(b0[i] - b1[i]));
            }
            fresh.close();
        }
        assertTrue(moved > 1e-3, "the steps changed the adapter (max change " + moved + ")");
    }

    @Test
    void anSftTermAddsTheChosenResponsesNllPerTokenToTheLoss(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), CONFIG, 3, CHARS);
        try (LlamaModel model = LlamaModel.load(ckpt); var tokenizer = org.prefloop.model.TextTokenizer.load(ckpt)) {
            List<DpoTrainer.Pair> train = pairs(new TextIds(tokenizer), 6, 7);
            double nll;
            try (var scope = model.manager().newSubManager()) {
                ai.djl.pytorch.jni.JniUtils.setGradMode(false);
                List<SequenceLogProbs.Sequence> chosen = train.stream().map(p -> SequenceLogProbs.Sequence.of(p.prompt(), p.chosen())).toList();
                nll = -SequenceLogProbs.of(model, chosen, scope).sum().getFloat() / train.stream().mapToInt(p -> p.chosen().length).sum();
            }
            LoraAdapter policy = LoraAdapter.create(model, LoraAdapter.Config.of(4, 8, List.of("q_proj"), null), 5, false);
            try (DpoTrainer trainer = new DpoTrainer(model, Trainable.lora(policy), AdamW.defaults(),
                    new DpoTrainer.Settings(DpoLoss.Objective.of(List.of("sigmoid", "sft"), List.of(1.0, 0.5), 0, 0.1, 0), 1.0))) {
                assertEquals(Math.log(2) + 0.5 * nll, trainer.step(train, 2, 1e-3).loss(), 1e-4, "ln 2 + alpha * NLL of the chosen responses");
            }
        }
    }
}
