package org.prefloop.runs;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.model.TinyModelRecipe;
import org.prefloop.train.RunCancelledException;
import org.prefloop.train.RunListener;
import org.prefloop.train.RunSpec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The TRL executor on its own, in a real python3 child: bad data and cancellation (the worker's path is TrlRunsTest). */
class TrlExecutorTest {
    static final Path TASK = Path.of("preference-data/synthetic").toAbsolutePath();
    static final Path MODEL = Path.of("target/trl-test-model").toAbsolutePath();

    /** Skips, saying why, where python3 lacks the TRL stack (a bare CI image); the project's machines have it. */
    static void assumeTrl() {
        String probe = "import importlib.util, sys; missing = [m for m in ('torch', 'transformers', 'peft', 'trl', 'datasets') "
                + "if importlib.util.find_spec(m) is None]; print(' '.join(missing)); sys.exit(1 if missing else 0)";
        String why;
        try {
            Process p = new ProcessBuilder("python3", "-c", probe).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes()).strip();
            why = p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0 ? null : "python3 lacks " + out;
        } catch (IOException | InterruptedException e) {
            why = "no python3: " + e.getMessage();
        }
        String reason = why;
        Assumptions.assumeTrue(reason == null, () -> "skipped: the TRL executor needs python3 with torch, transformers, peft, trl and datasets "
                + "(pip install --no-index --find-links /opt/wheels trl peft datasets); " + reason);
    }

    @BeforeAll
    static void model() {
        assumeTrl();
        if (!Files.exists(MODEL.resolve("config.json"))) TinyModelRecipe.read(TASK.resolve("tiny-model.json")).write(MODEL);
    }

    static RunSpec spec(String sftDataset, String dpoDataset, int sftSteps) {
        return RunSpec.parse("""
                name: trl-unit
                executor: trl
                model_name_or_path: %s
                output_dir: out
                seed: 5
                sft: {dataset: "%s", max_steps: %d, per_device_train_batch_size: 4, learning_rate: 1.0e-3, max_length: 64, r: 4, lora_alpha: 8}
                dpo: {dataset: "%s", max_steps: 2, per_device_train_batch_size: 4, learning_rate: 1.0e-3, max_length: 64, r: 4, lora_alpha: 8}
                """.formatted(MODEL, sftDataset, sftSteps, dpoDataset));
    }

    @Test
    void aRunWithBadDataFailsWithTheLineAndFieldAndLeavesNoModel(@TempDir Path dir) throws IOException {
        Path bad = dir.resolve("bad-dpo.jsonl");
        List<String> lines = Files.readAllLines(TASK.resolve("dpo.jsonl")).subList(0, 3);
        Files.write(bad, List.of(lines.get(0), lines.get(1).replace("\"rejected\"", "\"rejectd\""), lines.get(2)));
        RunSpec spec = spec(TASK + "/sft.jsonl", bad.toString(), 2);
        long start = System.nanoTime();
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new TrlExecutor("python3").run(spec, dir.resolve("run"), RunListener.NONE, () -> false));
        assertEquals("dpo.dataset line 2: no 'rejected'", e.getMessage());
        assertTrue((System.nanoTime() - start) / 1e9 < 20, "bad data fails before torch is imported");
        assertFalse(Files.exists(dir.resolve("run/out/model")));
        assertFalse(Files.exists(dir.resolve("run/out/summary.json")));

        IllegalStateException noPython = assertThrows(IllegalStateException.class,
                () -> new TrlExecutor("/nowhere/python3").run(spec, dir.resolve("run2"), RunListener.NONE, () -> false));
        assertTrue(noPython.getMessage().contains("cannot start /nowhere/python3"), noPython.getMessage());

        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> RunSpec.parse("model_name_or_path: m\nexecutor: deepspeed\ndpo: {dataset: d}\n"));
        assertTrue(unknown.getMessage().contains("executor must be one of djl, trl, kubeflow"), unknown.getMessage());
    }

    @Test
    void aCancelledRunEndsTheProcessAtItsFirstStepAndLeavesNoModel(@TempDir Path dir) {
        AtomicBoolean stepped = new AtomicBoolean();
        RunListener listener = new RunListener() {
            @Override
            public void step(String stage, int step, int totalSteps, Map<String, Double> metrics) {
                assertEquals(1_000, totalSteps);
                stepped.set(true);
            }
        };
        RunSpec spec = spec(TASK + "/sft.jsonl", TASK + "/dpo.jsonl", 1_000);
        RunCancelledException e = assertThrows(RunCancelledException.class,
                () -> new TrlExecutor("python3").run(spec, dir.resolve("run"), listener, stepped::get));
        assertTrue(e.getMessage().startsWith("cancelled in sft at step "), e.getMessage());
        assertTrue(Files.exists(dir.resolve("run/out/sft/metrics.jsonl")), "it had trained");
        assertFalse(Files.exists(dir.resolve("run/out/model")));
        assertFalse(Files.exists(dir.resolve("run/out/summary.json")));
        assertTrue(ProcessHandle.current().descendants().noneMatch(h -> h.info().commandLine().orElse("").contains(TrlExecutor.SCRIPT)),
                "the python process is gone");
    }

    @Test
    void theChildGetsAbsolutePathsAndTheTrlSettingsDjlIgnores(@TempDir Path dir) throws IOException {
        RunSpec spec = RunSpec.parse("""
                model_name_or_path: models/base
                output_dir: out
                executor: trl
                sft: {dataset: data/sft.jsonl, bf16: true, gradient_checkpointing: true, optim: adamw_torch_fused}
                """);
        var json = TrlExecutor.resolvedSpec(spec, dir);
        assertEquals(dir.resolve("models/base").toString(), json.get("model_name_or_path").asText());
        assertEquals(dir.resolve("out").toString(), json.get("output_dir").asText());
        assertEquals(dir.resolve("data/sft.jsonl").toString(), json.get("sft").get("dataset").asText());
        assertTrue(json.get("sft").get("bf16").asBoolean());
        assertTrue(json.get("sft").get("gradient_checkpointing").asBoolean());
        assertEquals("adamw_torch_fused", json.get("sft").get("optim").asText());
        assertEquals("trl", json.get("executor").asText());
    }
}
