package org.prefloop.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The likelihood-displacement monitor on runs whose direction is known, from the bundled demo
 * model (the synthetic task's SFT model, whose answers already end where they should):
 * {@code apo_down} is built to lower the chosen answers' likelihood (it is for chosen answers
 * worse than the model's own), {@code apo_zero} to raise it. The first must warn (and stop, when
 * asked), the second must not.
 */
class DisplacementMonitorTest {
    static final Path TASK = Path.of("preference-data/synthetic");
    static final Path DEMO = Path.of("models/demo").toAbsolutePath();

    static RunSpec spec(Path out, String lossType, boolean stop) {
        return RunSpec.parse("""
                name: displace
                model_name_or_path: %s
                output_dir: %s
                seed: 5
                dpo:
                  dataset: dpo.jsonl
                  eval_split: 0.05
                  r: 8
                  lora_alpha: 16
                  max_steps: 12
                  per_device_train_batch_size: 8
                  learning_rate: 2.0e-3
                  lr_scheduler_type: constant
                  beta: 0.5
                  loss_type: %s
                  eval_steps: 3
                  max_length: 64
                  displacement_threshold: 0.2
                  stop_on_displacement: %s
                """.formatted(DEMO, out, lossType, stop));
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> displacement(Map<String, Object> summary) {
        return (Map<String, Object>) ((Map<String, Object>) summary.get("dpo")).get("displacement");
    }

    @Test
    void aRunThatLowersTheChosenAnswersIsReportedAndCanBeStopped(@TempDir Path tmp) {
        List<String> messages = new ArrayList<>();
        RunListener listener = new RunListener() {
            @Override
            public void message(String text) {
                messages.add(text);
            }
        };
        Map<String, Object> warned = new AlignmentRun(spec(tmp.resolve("warn"), "apo_down", false), TASK, listener, () -> false).run();
        Map<String, Object> d = displacement(warned);
        System.out.println("apo_down: " + d);
        assertEquals(true, d.get("exceeded"), "apo_down lowers the chosen answers: " + d);
        assertTrue(((Number) d.get("largest_fall/chosen_per_token")).doubleValue() > 0.2, d.toString());
        assertTrue(((List<?>) warned.get("warnings")).get(0).toString().contains("less likely"), "the summary says it plainly: " + warned.get("warnings"));
        assertTrue(messages.stream().anyMatch(m -> m.contains("likelihood displacement")), "the run warns while it runs: " + messages);
        @SuppressWarnings("unchecked") Map<String, Object> dpo = (Map<String, Object>) warned.get("dpo");
        assertEquals(12, ((Number) dpo.get("steps")).intValue(), "without the stop rule the stage runs on");

        Map<String, Object> stopped = new AlignmentRun(spec(tmp.resolve("stop"), "apo_down", true), TASK, RunListener.NONE, () -> false).run();
        @SuppressWarnings("unchecked") Map<String, Object> stoppedDpo = (Map<String, Object>) stopped.get("dpo");
        int firstExceeded = ((Number) displacement(stopped).get("first_exceeded_at_step")).intValue();
        assertEquals(true, stoppedDpo.get("stopped_early"));
        assertEquals(firstExceeded, ((Number) stoppedDpo.get("steps")).intValue(), "the stage ends at the evaluation that saw it");
        assertEquals("succeeded", stopped.get("status"));
    }

    @Test
    void aRunThatRaisesTheChosenAnswersIsNotReported(@TempDir Path tmp) {
        Map<String, Object> summary = new AlignmentRun(spec(tmp, "apo_zero", true), TASK, RunListener.NONE, () -> false).run();
        Map<String, Object> d = displacement(summary);
        System.out.println("apo_zero: " + d);
        assertEquals(false, d.get("exceeded"), d.toString());
        assertNull(summary.get("warnings"));
        assertFalse((Boolean) ((Map<?, ?>) summary.get("dpo")).get("stopped_early"));
    }
}
