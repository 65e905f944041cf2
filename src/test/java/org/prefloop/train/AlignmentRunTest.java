package org.prefloop.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.model.TinyModelRecipe;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The pipeline's promises: the same seed gives the same curve, and a killed run resumes onto that same curve. */
class AlignmentRunTest {
    static final Path TASK = Path.of("preference-data/synthetic");
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    static Path shared;
    static Path init;

    @BeforeAll
    static void writeModel() {
        init = TinyModelRecipe.read(TASK.resolve("tiny-model.json")).write(shared.resolve("init"));
    }

    /** A short SFT (LoRA with dropout) then DPO run on the synthetic task, checkpointing often. */
    static RunSpec spec(Path out) {
        RunSpec spec = RunSpec.parse("""
                name: short
                model_name_or_path: %s
                output_dir: %s
                seed: 3
                sft:
                  dataset: sft.jsonl
                  eval_split: 0.02
                  r: 4
                  lora_alpha: 8
                  lora_dropout: 0.1
                  max_steps: 10
                  per_device_train_batch_size: 2
                  gradient_accumulation_steps: 2
                  learning_rate: 1.0e-3
                  warmup_ratio: 0.2
                  save_steps: 4
                  eval_steps: 5
                  max_length: 64
                dpo:
                  dataset: dpo.jsonl
                  r: 4
                  lora_alpha: 8
                  max_steps: 6
                  per_device_train_batch_size: 4
                  learning_rate: 1.0e-3
                  save_steps: 2
                  max_length: 64
                """.formatted(init, out));
        return spec;
    }

    static List<JsonNode> curve(Path out, String stage) throws IOException {
        List<JsonNode> lines = new ArrayList<>();
        for (String l : Files.readAllLines(out.resolve(stage).resolve("metrics.jsonl"))) {
            JsonNode n = JSON.readTree(l);
            ((com.fasterxml.jackson.databind.node.ObjectNode) n).remove("tokens_per_second");
            lines.add(n);
        }
        return lines;
    }

    static void assertSameCurve(List<JsonNode> expected, List<JsonNode> actual, String what) {
        assertEquals(expected.size(), actual.size(), what + ": number of logged lines");
        for (int i = 0; i < expected.size(); i++) {
            JsonNode e = expected.get(i), a = actual.get(i);
            e.fieldNames().forEachRemaining(k -> assertEquals(e.get(k).asDouble(), a.get(k).asDouble(), 1e-5 * Math.max(1, Math.abs(e.get(k).asDouble())),
                    what + " line " + a + " field " + k));
        }
    }

    @Test
    void theSameSeedGivesTheSameLossesAndAKilledRunResumesOntoTheSameCurve(@TempDir Path tmp) throws IOException {
        Path straight = tmp.resolve("straight");
        Map<String, Object> summary = new AlignmentRun(spec(straight), TASK, RunListener.NONE, () -> false).run();
        assertEquals("succeeded", summary.get("status"));
        assertTrue(Files.exists(straight.resolve("sft/adapter/adapter_config.json")));
        assertTrue(Files.exists(straight.resolve("dpo/adapter/adapter_model.safetensors")));
        assertTrue(Files.exists(straight.resolve("model/model.safetensors")));
        assertTrue(Files.exists(straight.resolve("model/tokenizer.json")));
        List<JsonNode> sft = curve(straight, "sft");
        assertTrue(sft.stream().anyMatch(n -> n.has("eval_loss")), "validation loss is logged");
        assertEquals(0.0, sft.get(0).get("learning_rate").asDouble(), "warmup starts at 0");
        List<JsonNode> dpo = curve(straight, "dpo");
        assertEquals(Math.log(2), dpo.get(0).get("loss").asDouble(), 1e-5, "DPO starts at ln 2: the policy is the reference");
        for (String k : List.of("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected",
                "learning_rate", "grad_norm", "tokens_per_second")) {
            assertTrue(JSON.readTree(Files.readAllLines(straight.resolve("dpo/metrics.jsonl")).get(0)).has(k), "DPO logs " + k);
        }

        Path again = tmp.resolve("again");
        new AlignmentRun(spec(again), TASK, RunListener.NONE, () -> false).run();
        assertSameCurve(sft, curve(again, "sft"), "rerun sft");
        assertSameCurve(dpo, curve(again, "dpo"), "rerun dpo");

        // killed in SFT after its step-8 checkpoint, then in DPO after its step-4 checkpoint; each restart continues
        Path killed = tmp.resolve("killed");
        String[] where = {"", "0"};
        RunListener tracker = new RunListener() {
            @Override
            public void step(String stage, int step, int totalSteps, Map<String, Double> metrics) {
                where[0] = stage;
                where[1] = String.valueOf(step);
            }
        };
        assertThrows(RunCancelledException.class, () -> new AlignmentRun(spec(killed), TASK, tracker,
                () -> where[0].equals("sft") && Integer.parseInt(where[1]) >= 9).run());
        assertTrue(Checkpoint.latest(killed.resolve("checkpoints"), "sft").isPresent());
        assertThrows(RunCancelledException.class, () -> new AlignmentRun(spec(killed), TASK, tracker,
                () -> where[0].equals("dpo") && Integer.parseInt(where[1]) >= 5).run());
        assertTrue(Files.exists(killed.resolve("sft/summary.json")), "SFT finished on the second attempt");
        Map<String, Object> resumed = new AlignmentRun(spec(killed), TASK, tracker, () -> false).run();
        assertEquals("succeeded", resumed.get("status"));
        assertSameCurve(sft, curve(killed, "sft"), "resumed sft");
        assertSameCurve(dpo, curve(killed, "dpo"), "resumed dpo");
        assertArrayEqualsFile(straight.resolve("model/model.safetensors"), killed.resolve("model/model.safetensors"));
    }

    /**
     * gradient_checkpointing through a whole run gives the curves of the plain run (dropout off: with
     * it the checkpointed pass draws its masks from per-layer seeds, another stream); group_by_length
     * still trains.
     */
    @Test
    void gradientCheckpointingFollowsThePlainCurveAndGroupByLengthTrains(@TempDir Path tmp) throws IOException {
        Path plain = tmp.resolve("plain"), checkpointed = tmp.resolve("checkpointed"), grouped = tmp.resolve("grouped");
        new AlignmentRun(shortSpec(plain, ""), TASK, RunListener.NONE, () -> false).run();
        new AlignmentRun(shortSpec(checkpointed, "gradient_checkpointing: true"), TASK, RunListener.NONE, () -> false).run();
        assertSameCurve(curve(plain, "sft"), curve(checkpointed, "sft"), "checkpointed sft");
        assertSameCurve(curve(plain, "dpo"), curve(checkpointed, "dpo"), "checkpointed dpo");
        assertEquals("succeeded", new AlignmentRun(shortSpec(grouped, "group_by_length: true"), TASK, RunListener.NONE, () -> false).run().get("status"));
    }

    /** SFT (no dropout) then DPO, a few steps each, with {@code extra} in both stages. */
    private static RunSpec shortSpec(Path out, String extra) {
        return RunSpec.parse("""
                model_name_or_path: %s
                output_dir: %s
                seed: 3
                sft: {dataset: sft.jsonl, r: 4, lora_alpha: 8, max_steps: 4, per_device_train_batch_size: 2, gradient_accumulation_steps: 2, learning_rate: 1.0e-3, max_length: 64%s}
                dpo: {dataset: dpo.jsonl, r: 4, lora_alpha: 8, max_steps: 3, per_device_train_batch_size: 4, learning_rate: 1.0e-3, max_length: 64%s}
                """.formatted(init, out, extra.isEmpty() ? "" : ", " + extra, extra.isEmpty() ? "" : ", " + extra));
    }

    private static void assertArrayEqualsFile(Path a, Path b) throws IOException {
        var x = org.prefloop.model.Safetensors.read(a);
        var y = org.prefloop.model.Safetensors.read(b);
        assertEquals(x.keySet(), y.keySet());
        for (String k : x.keySet()) {
            float[] p = x.get(k).toFloatArray(), q = y.get(k).toFloatArray();
            for (int i = 0; i < p.length; i++) assertEquals(p[i], q[i], 1e-5f, "aligned model tensor " + k);
        }
    }

    @Test
    void preflightNamesWhatTheLiteratureWarnsAbout(@TempDir Path tmp) throws IOException {
        Path few = tmp.resolve("few.jsonl");
        List<String> lines = Files.readAllLines(TASK.resolve("sft.jsonl")).subList(0, 40);
        Files.write(few, lines);
        Path eval = tmp.resolve("eval.jsonl");
        List<String> evalLines = new ArrayList<>(lines.subList(0, 3));
        evalLines.add(lines.get(3).replace("reverse: ", "please reverse: "));   // a near duplicate
        evalLines.add(Files.readAllLines(TASK.resolve("heldout.jsonl")).get(0).replace("\"answer\"", "\"ignored\"")
                .replace("\"prompt\": [", "\"messages\": ["));               // no assistant turn: cannot be learned
        Files.write(eval, evalLines);
        RunSpec spec = RunSpec.parse("""
                model_name_or_path: %s
                sft:
                  dataset: %s
                  eval_dataset: %s
                  learning_rate: 1.0e-2
                  num_train_epochs: 5
                  max_length: 36
                  optim: adamw_torch_fused
                """.formatted(init, few, eval));
        PreflightReport report = Preflight.check(spec, tmp);
        String text = report.render();
        assertTrue(report.ok(), text);
        for (String check : List.of("sft.dataset", "sft.learning_rate", "sft.num_train_epochs", "sft.max_length", "sft.contamination", "settings")) {
            assertTrue(report.has(check), "the report has " + check + ":\n" + text);
        }
        assertTrue(text.contains("40 examples"), text);
        assertTrue(text.matches("(?s).*sft.max_length: [1-9][0-9]* of 40 examples exceed max_length 36 and will be truncated.*"), text);
        assertTrue(text.contains("3 evaluation examples also appear in the training data exactly, 1 nearly"), text);
        assertTrue(text.contains("optim"), text);
        assertTrue(text.contains("sft memory"), text);
        for (String key : List.of("bf16", "fp16")) {
            String half = "model_name_or_path: %s\n%ssft: {dataset: %s, %s: true}\n";
            PreflightReport refused = Preflight.check(RunSpec.parse(half.formatted(init, "", few, key)), tmp);
            assertFalse(refused.ok(), key + " on the DJL executor is refused, not trained in float32 unasked");
            assertTrue(refused.has("sft." + key) && refused.render().contains("executor: trl"), refused.render());
            assertFalse(Preflight.check(RunSpec.parse(half.formatted(init, "executor: trl\n", few, key)), tmp).has("sft." + key),
                    "TRL applies " + key + " as given");
            RunSpec unnamed = RunSpec.parse(half.formatted(init, "", few, key));
            assertFalse(Preflight.check(unnamed.withDefaultExecutor("trl"), tmp).has("sft." + key),
                    "a spec without an executor on a server whose PREFLOOP_EXECUTOR is trl is checked as a trl run");
            assertTrue(Preflight.check(unnamed.withDefaultExecutor("djl"), tmp).has("sft." + key));
        }

        IllegalArgumentException typo = assertThrows(IllegalArgumentException.class, () -> RunSpec.parse("""
                model_name_or_path: x
                sft:
                  dataset: d.jsonl
                  learnig_rate: 1.0e-4
                """));
        assertTrue(typo.getMessage().contains("sft.learnig_rate"), typo.getMessage());
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> Preflight.check(RunSpec.parse("""
                model_name_or_path: %s
                sft:
                  dataset: nowhere.jsonl
                """.formatted(init)), tmp));
        assertTrue(missing.getMessage().contains("nowhere.jsonl"), missing.getMessage());
        assertFalse(Preflight.check(RunSpec.parse("""
                model_name_or_path: %s
                sft:
                  dataset: %s
                """.formatted(init, eval)), tmp).render().contains("error   sft.dataset"), "some examples were usable");
    }

    @Test
    void earlyStoppingEndsAStageWhoseValidationLossStopsImprovingAndReplayMixesGeneralExamplesIn(@TempDir Path tmp) {
        RunSpec spec = RunSpec.parse("""
                model_name_or_path: %s
                output_dir: %s
                sft:
                  dataset: sft.jsonl
                  eval_split: 0.02
                  max_steps: 40
                  per_device_train_batch_size: 2
                  gradient_accumulation_steps: 2
                  learning_rate: 1.0e-12
                  eval_steps: 1
                  early_stopping_patience: 2
                  replay_dataset: general.jsonl
                  replay_ratio: 0.25
                  max_length: 64
                """.formatted(init, tmp.resolve("out")));
        Map<String, Object> summary = new AlignmentRun(spec, TASK, RunListener.NONE, () -> false).run();
        @SuppressWarnings("unchecked") Map<String, Object> sft = (Map<String, Object>) summary.get("sft");
        assertEquals(true, sft.get("stopped_early"), sft.toString());
        assertEquals(3, ((Number) sft.get("steps")).intValue(), "best at step 1, then two evaluations without improvement: " + sft);
        @SuppressWarnings("unchecked") Map<String, Double> last = (Map<String, Double>) sft.get("final");
        // 1,176 training examples (2% held out of 1,200); a step sees 2 x 2 examples (TRL's meaning of
        // per_device_train_batch_size and gradient_accumulation_steps), one of them replay: an epoch is 392 steps
        assertEquals(3.0 / 392, last.get("epoch"), 1e-9, "steps hold 3 task examples and 1 replay example: " + last);
    }

    @Test
    void packingFillsRowsWithWholeExamplesAndStillTrains(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("out");
        RunSpec spec = RunSpec.parse("""
                model_name_or_path: %s
                output_dir: %s
                seed: 5
                sft:
                  dataset: sft.jsonl
                  packing: true
                  r: 4
                  lora_alpha: 8
                  max_steps: 40
                  per_device_train_batch_size: 4
                  learning_rate: 5.0e-3
                  logging_steps: 1
                  max_length: 256
                """.formatted(init, out));
        Map<String, Object> summary = new AlignmentRun(spec, TASK, RunListener.NONE, () -> false).run();
        @SuppressWarnings("unchecked") Map<String, Object> sft = (Map<String, Object>) summary.get("sft");
        int rows = ((Number) sft.get("examples")).intValue();
        assertTrue(rows < 1200 / 3, "1,200 short transcripts packed into 256-token rows take far fewer rows: " + rows);
        List<Double> losses = curve(out, "sft").stream().filter(n -> n.has("loss")).map(n -> n.get("loss").asDouble()).toList();
        assertEquals(40, losses.size());
        double first = losses.subList(0, 4).stream().mapToDouble(Double::doubleValue).average().orElseThrow();
        double last = losses.subList(36, 40).stream().mapToDouble(Double::doubleValue).average().orElseThrow();
        assertTrue(last < first * 0.95, "the loss falls on packed rows: " + first + " -> " + last);
    }
}
