package org.prefloop.train;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.Generator;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.TextTokenizer;
import org.prefloop.model.TinyModelRecipe;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proof that the trainer aligns, on the synthetic task in preference-data/synthetic: a tiny model
 * trained from scratch, then SFT on demonstrations of which 30% carry a systematic slip, then DPO
 * on pairs that prefer the right answer. Every number is measured by running the model on
 * held-out words that no training file contains.
 */
class AlignmentProofTest {
    static final Path TASK = Path.of("preference-data/synthetic");

    /** Words starting with one of these carry the SFT demonstrations' slip (make_synthetic.py). */
    static final String SLIPPED = "aei";

    /** Shares of held-out prompts whose greedy answer is exactly right: all, the slipped words, the rest. */
    record ExactMatch(double all, double slipped, double rest) {
        @Override
        public String toString() {
            return String.format(java.util.Locale.ROOT, "%.3f (slipped %.3f, rest %.3f)", all, slipped, rest);
        }
    }

    static ExactMatch exactMatch(Path modelDir) {
        List<JsonNode> heldout = TrainingData.readLines(TASK.resolve("heldout.jsonl"));
        try (LlamaModel model = LlamaModel.load(modelDir); TextTokenizer tok = TextTokenizer.load(modelDir)) {
            ChatTemplate template = ChatTemplate.load(modelDir);
            List<long[]> prompts = new ArrayList<>();
            for (JsonNode h : heldout) prompts.add(tok.encode(template.render(TrainingData.messages(h.get("prompt"), "prompt"), true)));
            List<Generator.Completion> out = new Generator(model, tok).generate(prompts, Generator.GenerationParams.greedy(10), null);
            int[] right = new int[2], total = new int[2];
            for (int i = 0; i < heldout.size(); i++) {
                String answer = heldout.get(i).get("answer").asText();
                int group = SLIPPED.indexOf(answer.charAt(answer.length() - 1)) >= 0 ? 0 : 1;
                total[group]++;
                if (out.get(i).text().strip().equals(answer)) right[group]++;
            }
            return new ExactMatch((double) (right[0] + right[1]) / heldout.size(), (double) right[0] / total[0], (double) right[1] / total[1]);
        }
    }

    /** PEFT's rule: the base that adapter_config.json names, plus the adapter, is the aligned model. */
    static void assertDpoAdapterRebuildsTheAlignedModelOnTheBaseItNames(Path run) {
        try {
            Path adapterDir = run.resolve("dpo/adapter");
            Path named = Path.of(new com.fasterxml.jackson.databind.ObjectMapper().readTree(adapterDir.resolve("adapter_config.json").toFile())
                    .get("base_model_name_or_path").asText());
            assertEquals(run.resolve("sft/model").toAbsolutePath().normalize(), named.toAbsolutePath().normalize(), "the DPO adapter names the SFT model");
            try (LlamaModel rebuilt = LlamaModel.load(named); LoraAdapter dpo = LoraAdapter.load(adapterDir, rebuilt);
                 LlamaModel aligned = LlamaModel.load(run.resolve("model"))) {
                dpo.mergeInto(rebuilt);
                aligned.parameters().forEach((name, p) -> {
                    float[] want = p.toFloatArray(), got = rebuilt.parameters().get(name).toFloatArray();
                    for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-6, name + "[" + i + "]");
                });
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void sftThenDpoAlignsATinyModelOnTheSyntheticTask(@TempDir Path tmp) {
        Path init = TinyModelRecipe.read(TASK.resolve("tiny-model.json")).write(tmp.resolve("init"));
        ExactMatch untrained = exactMatch(init);

        RunSpec pretrain = RunSpec.read(TASK.resolve("pretrain.yaml"))
                .withPath("model_name_or_path", init.toString()).withPath("output_dir", tmp.resolve("pretrain").toString());
        long t0 = System.nanoTime();
        new AlignmentRun(pretrain, TASK, RunListener.NONE, () -> false).run();
        System.out.printf("pretrain %.1fs%n", (System.nanoTime() - t0) / 1e9);
        Path base = tmp.resolve("pretrain/model");
        ExactMatch pretrained = exactMatch(base);

        RunSpec align = RunSpec.read(TASK.resolve("align.yaml"))
                .withPath("model_name_or_path", base.toString()).withPath("output_dir", tmp.resolve("align").toString());
        t0 = System.nanoTime();
        Map<String, Object> summary = new AlignmentRun(align, TASK, RunListener.NONE, () -> false).run();
        System.out.printf("align %.1fs%n", (System.nanoTime() - t0) / 1e9);

        // the SFT model alone, kept by the run because the DPO adapter names it as its base
        Path sftModel = tmp.resolve("align/sft/model");
        assertDpoAdapterRebuildsTheAlignedModelOnTheBaseItNames(tmp.resolve("align"));
        ExactMatch afterSft = exactMatch(sftModel);
        ExactMatch afterDpo = exactMatch(tmp.resolve("align/model"));
        @SuppressWarnings("unchecked") Map<String, Object> dpo = (Map<String, Object>) summary.get("dpo");
        @SuppressWarnings("unchecked") Map<String, Double> dpoEval = (Map<String, Double>) dpo.get("final_eval");
        System.out.printf("exact match on held-out words: untrained %s, pretrained %s, SFT %s, DPO %s; DPO eval %s; forgetting %s%n",
                untrained, pretrained, afterSft, afterDpo, dpoEval, summary.get("forgetting"));

        assertTrue(pretrained.all() >= 0.9, "pretraining teaches the task: " + untrained + " -> " + pretrained);
        assertTrue(afterSft.slipped() <= pretrained.slipped() - 0.25, "SFT on the slipped demonstrations teaches the slip: " + pretrained + " -> " + afterSft);
        assertTrue(dpoEval.get("eval_rewards/accuracies") >= 0.9, "held-out reward accuracy " + dpoEval);
        // rewards/margins = beta * (policy margin - reference margin): positive means the policy's chosen-minus-rejected log-prob margin grew
        assertTrue(dpoEval.get("eval_rewards/margins") > 1.0, "the chosen-minus-rejected margin grew: " + dpoEval);
        // the margins are wide on purpose: float reductions differ between processors, and a proof must hold on any of them
        assertTrue(afterDpo.slipped() >= afterSft.slipped() + 0.25, "DPO fixes the slip the demonstrations taught: " + afterSft + " -> " + afterDpo);
        assertTrue(afterDpo.rest() >= afterSft.rest() - 0.05, "DPO keeps what SFT got right: " + afterSft + " -> " + afterDpo);
        assertTrue(afterDpo.all() >= afterSft.all() + 0.1, "DPO lifts exact match above the SFT model: " + afterSft + " -> " + afterDpo);
        assertTrue(((String) dpo.get("reference_model")).contains("SFT result"), "the summary names the reference: " + dpo.get("reference_model"));
        assertEquals("succeeded", summary.get("status"));
    }
}
