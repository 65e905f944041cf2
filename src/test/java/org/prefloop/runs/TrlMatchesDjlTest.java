package org.prefloop.runs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.train.AlignmentRun;
import org.prefloop.train.RunListener;
import org.prefloop.train.RunSpec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.prefloop.runs.TrlExecutorTest.MODEL;
import static org.prefloop.runs.TrlExecutorTest.TASK;

/**
 * Same spec, two executors: on a full-batch, full-fine-tuning run (no LoRA initialisation, no data
 * order, no dropout to draw) the DJL trainer and TRL must give the same loss at every step.
 */
class TrlMatchesDjlTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void model() {
        TrlExecutorTest.model();
    }

    @Test
    void perStepLossesMatchTheDjlExecutors(@TempDir Path dir) throws IOException {
        Files.write(dir.resolve("sft.jsonl"), Files.readAllLines(TASK.resolve("sft.jsonl")).subList(0, 8));
        Files.write(dir.resolve("dpo.jsonl"), Files.readAllLines(TASK.resolve("dpo.jsonl")).subList(0, 8));
        String yaml = """
                name: match
                model_name_or_path: %s
                output_dir: out
                seed: 5
                sft: {dataset: "%s", use_peft: false, max_steps: 3, per_device_train_batch_size: 8, learning_rate: 1.0e-3, lr_scheduler_type: constant, max_length: 64}
                dpo: {dataset: "%s", use_peft: false, max_steps: 3, per_device_train_batch_size: 8, learning_rate: 1.0e-3, lr_scheduler_type: constant, beta: 0.1, max_length: 64}
                """.formatted(MODEL, dir.resolve("sft.jsonl"), dir.resolve("dpo.jsonl"));
        new AlignmentRun(RunSpec.parse(yaml), dir.resolve("djl"), RunListener.NONE, () -> false).run();
        new TrlExecutor("python3").run(RunSpec.parse(yaml), dir.resolve("trl"), RunListener.NONE, () -> false);
        for (String stage : List.of("sft", "dpo")) {
            List<Double> djl = losses(dir.resolve("djl/out").resolve(stage).resolve("metrics.jsonl"));
            List<Double> trl = losses(dir.resolve("trl/out").resolve(stage).resolve("metrics.jsonl"));
            assertEquals(3, djl.size());
            assertEquals(3, trl.size());
            for (int i = 0; i < 3; i++) assertEquals(djl.get(i), trl.get(i), 1e-5, stage + " step " + (i + 1) + ": " + djl + " vs " + trl);
        }
    }

    private static List<Double> losses(Path metrics) throws IOException {
        List<Double> out = new ArrayList<>();
        for (String line : Files.readAllLines(metrics)) {
            JsonNode m = JSON.readTree(line);
            if (m.has("loss")) out.add(m.get("loss").asDouble());
        }
        return out;
    }
}
