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

    /** Share of held-out prompts whose greedy answer is exactly right. */
    static double exactMatch(Path modelDir) {
        List<JsonNode> heldout = TrainingData.readLines(TASK.resolve("heldout.jsonl"));
        try (LlamaModel model = LlamaModel.load(modelDir); TextTokenizer tok = TextTokenizer.load(modelDir)) {
            ChatTemplate template = ChatTemplate.load(modelDir);
            List<long[]> prompts = new ArrayList<>();
            for (JsonNode h : heldout) prompts.add(tok.encode(template.render(TrainingData.messages(h.get("prompt"), "prompt"), true)));
            List<Generator.Completion> out = new Generator(model, tok).generate(prompts, Generator.GenerationParams.greedy(10), null);
            int right = 0;
            for (int i = 0; i < heldout.size(); i++) {
                if (out.get(i).text().strip().equals(heldout.get(i).get("answer").asText())) right++;
            }
            return (double) right / heldout.size();
        }
    }

    @Test
    void sftThenDpoAlignsATinyModelOnTheSyntheticTask(@TempDir Path tmp) {
        Path init = TinyModelRecipe.read(TASK.resolve("tiny-model.json")).write(tmp.resolve("init"));
        double untrained = exactMatch(init);

        RunSpec pretrain = RunSpec.read(TASK.resolve("pretrain.yaml"));
        pretrain.model = init.toString();
        pretrain.outputDir = tmp.resolve("pretrain").toString();
        long t0 = System.nanoTime();
        new AlignmentRun(pretrain, TASK, RunListener.NONE, () -> false).run();
        System.out.printf("pretrain %.1fs%n", (System.nanoTime() - t0) / 1e9);
        Path base = tmp.resolve("pretrain/model");
        double pretrained = exactMatch(base);

        RunSpec align = RunSpec.read(TASK.resolve("align.yaml"));
        align.model = base.toString();
        align.outputDir = tmp.resolve("align").toString();
        t0 = System.nanoTime();
        Map<String, Object> summary = new AlignmentRun(align, TASK, RunListener.NONE, () -> false).run();
        System.out.printf("align %.1fs%n", (System.nanoTime() - t0) / 1e9);

        // the SFT model alone: the pretrained base with the SFT adapter merged
        Path sftModel = tmp.resolve("sft-model");
        try (LlamaModel model = LlamaModel.load(base); LoraAdapter sft = LoraAdapter.load(tmp.resolve("align/sft/adapter"), model)) {
            sft.mergeInto(model);
            AlignmentRun.saveModel(model, base, sftModel);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        double afterSft = exactMatch(sftModel);
        double afterDpo = exactMatch(tmp.resolve("align/model"));
        @SuppressWarnings("unchecked") Map<String, Object> dpo = (Map<String, Object>) summary.get("dpo");
        @SuppressWarnings("unchecked") Map<String, Double> dpoEval = (Map<String, Double>) dpo.get("final_eval");
        System.out.printf("exact match on held-out words: untrained %.3f, pretrained %.3f, SFT %.3f, DPO %.3f; DPO eval %s; forgetting %s%n",
                untrained, pretrained, afterSft, afterDpo, dpoEval, summary.get("forgetting"));

        assertTrue(afterSft >= untrained + 0.4, "SFT lifts exact match well above the untrained model: " + untrained + " -> " + afterSft);
        assertTrue(dpoEval.get("eval_rewards/accuracies") >= 0.9, "held-out reward accuracy " + dpoEval);
        // rewards/margins = beta * (policy margin - reference margin): positive means the policy's chosen-minus-rejected log-prob margin grew
        assertTrue(dpoEval.get("eval_rewards/margins") > 1.0, "the chosen-minus-rejected margin grew: " + dpoEval);
        assertTrue(afterDpo > afterSft + 0.05, "DPO lifts exact match above the SFT model: " + afterSft + " -> " + afterDpo);
        assertTrue(((String) dpo.get("reference_model")).contains("SFT result"), "the summary names the reference: " + dpo.get("reference_model"));
        assertEquals("succeeded", summary.get("status"));
    }
}
