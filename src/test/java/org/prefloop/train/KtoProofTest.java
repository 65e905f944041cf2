package org.prefloop.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * KTO on the synthetic task from thumbs alone: from the bundled demo model (the SFT model, which
 * learned the slip), one KTO stage on unpaired feedback must fix the slipped words and lift
 * held-out exact match. The feedback is truly unpaired: of each of the task's pairs only one
 * answer is kept, the right one with a thumbs up for half the prompts, the slipped one with a
 * thumbs down for the other half, so no prompt has both.
 */
class KtoProofTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void ktoFromUnpairedThumbsBeatsTheSftModel(@TempDir Path tmp) throws IOException {
        Path thumbs = tmp.resolve("thumbs.jsonl");
        writeThumbs(AlignmentProofTest.TASK.resolve("dpo.jsonl"), thumbs);
        RunSpec spec = RunSpec.parse("""
                name: kto
                model_name_or_path: %s
                output_dir: %s
                seed: 12
                kto:
                  dataset: %s
                  eval_split: 0.05
                  r: 16
                  lora_alpha: 32
                  num_train_epochs: 2
                  per_device_train_batch_size: 16
                  learning_rate: 3.0e-4
                  lr_scheduler_type: cosine
                  warmup_ratio: 0.05
                  beta: 0.5
                  max_length: 64
                  eval_steps: 25
                """.formatted(ReferenceFreeProofTest.DEMO, tmp.resolve("run"), thumbs));
        AlignmentProofTest.ExactMatch before = AlignmentProofTest.exactMatch(ReferenceFreeProofTest.DEMO);
        Map<String, Object> summary = new AlignmentRun(spec, AlignmentProofTest.TASK, RunListener.NONE, () -> false).run();
        AlignmentProofTest.ExactMatch after = AlignmentProofTest.exactMatch(tmp.resolve("run/model"));
        @SuppressWarnings("unchecked") Map<String, Object> kto = (Map<String, Object>) summary.get("kto");
        System.out.printf("kto: exact match %s -> %s; %s%n", before, after, kto.get("final_eval"));

        assertEquals("succeeded", summary.get("status"));
        assertEquals("kto", kto.get("loss_type"));
        @SuppressWarnings("unchecked") Map<String, Double> eval = (Map<String, Double>) kto.get("final_eval");
        assertTrue(eval.get("eval_rewards/chosen") > eval.get("eval_rewards/rejected"), "held-out thumbs-up answers gain on thumbs-down ones: " + eval);
        assertTrue(after.slipped() >= before.slipped() + 0.2, "KTO fixes the slip: " + before + " -> " + after);
        assertTrue(after.rest() >= before.rest() - 0.05, "KTO keeps what SFT got right: " + before + " -> " + after);
        assertTrue(after.all() >= before.all() + 0.05, "KTO beats the SFT model: " + before + " -> " + after);
        assertTrue(Files.isRegularFile(tmp.resolve("run/kto/adapter/adapter_config.json")), "the KTO adapter is written in PEFT's layout");
    }

    /** TRL's unpaired format from the pairs: prompt, completion, label; one answer per prompt. */
    static void writeThumbs(Path pairs, Path out) throws IOException {
        List<String> lines = new ArrayList<>();
        List<JsonNode> rows = TrainingData.readLines(pairs);
        for (int i = 0; i < rows.size(); i++) {
            boolean up = i % 2 == 0;
            ObjectNode row = JSON.createObjectNode();
            row.set("prompt", rows.get(i).get("prompt"));
            row.set("completion", rows.get(i).get(up ? "chosen" : "rejected"));
            row.put("label", up);
            lines.add(JSON.writeValueAsString(row));
        }
        Files.write(out, lines);
    }
}
