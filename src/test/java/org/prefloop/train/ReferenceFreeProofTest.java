package org.prefloop.train;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SimPO and ORPO, the objectives without a reference model, on the synthetic task: from the
 * bundled demo model (its SFT model, which learned the slip), one preference stage on the pairs
 * must fix the slipped words and lift held-out exact match, as DPO does.
 */
class ReferenceFreeProofTest {
    static final Path DEMO = Path.of("models/demo").toAbsolutePath();

    @ParameterizedTest
    @CsvSource({"simpo, 2.0, 3.0e-4", "orpo, 0.5, 3.0e-4"})
    void aReferenceFreeObjectiveBeatsTheSftModel(String lossType, double beta, double learningRate, @TempDir Path tmp) {
        RunSpec spec = RunSpec.parse("""
                name: %s
                model_name_or_path: %s
                output_dir: %s
                seed: 12
                dpo:
                  dataset: dpo.jsonl
                  eval_split: 0.05
                  r: 16
                  lora_alpha: 32
                  num_train_epochs: 2
                  per_device_train_batch_size: 16
                  learning_rate: %s
                  lr_scheduler_type: cosine
                  warmup_ratio: 0.05
                  beta: %s
                  loss_type: %s
                  max_length: 64
                  eval_steps: 25
                """.formatted(lossType, DEMO, tmp, learningRate, beta, lossType));
        AlignmentProofTest.ExactMatch before = AlignmentProofTest.exactMatch(DEMO);
        Map<String, Object> summary = new AlignmentRun(spec, AlignmentProofTest.TASK, RunListener.NONE, () -> false).run();
        AlignmentProofTest.ExactMatch after = AlignmentProofTest.exactMatch(tmp.resolve("model"));
        @SuppressWarnings("unchecked") Map<String, Object> dpo = (Map<String, Object>) summary.get("dpo");
        System.out.printf("%s: exact match %s -> %s; %s%n", lossType, before, after, dpo.get("final_eval"));

        assertTrue(((String) dpo.get("reference_model")).startsWith("none"), "no reference pass: " + dpo.get("reference_model"));
        assertTrue(after.slipped() >= before.slipped() + 0.2, lossType + " fixes the slip: " + before + " -> " + after);
        assertTrue(after.rest() >= before.rest() - 0.05, lossType + " keeps what SFT got right: " + before + " -> " + after);
        assertTrue(after.all() >= before.all() + 0.05, lossType + " beats the SFT model: " + before + " -> " + after);
        assertEquals("succeeded", summary.get("status"));
    }
}
