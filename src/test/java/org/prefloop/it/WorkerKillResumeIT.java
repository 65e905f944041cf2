package org.prefloop.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.model.TinyModelRecipe;
import org.prefloop.testing.ServiceProcess;

import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A worker killed (SIGKILL) in the middle of a run: when the service comes back, the job is taken
 * again once the dead worker's lease ran out, resumes from its last checkpoint, and finishes on
 * the same loss curve as an uninterrupted run of the same spec.
 */
class WorkerKillResumeIT {
    static final Path TASK = Path.of("preference-data/synthetic").toAbsolutePath();
    private final ObjectMapper json = new ObjectMapper();

    String spec(Path model, String name) {
        return """
                {"name": "%s", "model_name_or_path": "%s", "seed": 9,
                 "sft": {"dataset": "%s/sft.jsonl", "max_steps": 160, "save_steps": 10, "per_device_train_batch_size": 8,
                         "learning_rate": 1.0e-3, "max_length": 64, "r": 4, "lora_alpha": 8, "lora_dropout": 0.1},
                 "dpo": {"dataset": "%s/dpo.jsonl", "max_steps": 6, "save_steps": 2, "per_device_train_batch_size": 4,
                         "learning_rate": 1.0e-3, "max_length": 64, "r": 4, "lora_alpha": 8}}""".formatted(name, model, TASK, TASK);
    }

    @Test
    void aKilledWorkerResumesTheRunFromItsCheckpoint(@TempDir Path data) throws Exception {
        Path model = TinyModelRecipe.read(TASK.resolve("tiny-model.json")).write(data.resolve("tiny-model"));
        Map<String, String> env = Map.of("PREFLOOP_WORKER_LEASE_SECONDS", "4");
        long killed;
        try (ServiceProcess service = new ServiceProcess(data, env).start()) {
            var created = service.postJson("/api/runs", spec(model, "killed"));
            assertEquals(201, created.statusCode(), created.body());
            killed = json.readTree(created.body()).get("id").asLong();
            JsonNode run = null;
            for (int i = 0; i < 600; i++) {
                run = run(service, killed);
                if (run.path("step").asInt() >= 35 && "sft".equals(run.path("stage").asText())) break;
                Thread.sleep(100);
            }
            assertTrue(run.path("step").asInt() >= 35 && run.path("step").asInt() < 160, "killed mid-SFT: " + run);
            service.kill();
        }
        try (ServiceProcess service = new ServiceProcess(data, env).start()) {
            JsonNode resumed = awaitFinished(service, killed);
            assertEquals("succeeded", resumed.get("status").asText(), resumed.toString());
            assertEquals(2, resumed.get("attempts").asInt(), "taken twice: " + resumed);

            var straightCreated = service.postJson("/api/runs", spec(model, "straight"));
            JsonNode straight = awaitFinished(service, json.readTree(straightCreated.body()).get("id").asLong());
            assertEquals("succeeded", straight.get("status").asText());
            Map<Integer, Double> a = losses(awaitMetrics(service, killed)), b = losses(awaitMetrics(service, straight.get("id").asLong()));
            assertEquals(160, a.size(), "one stored SFT loss per step, none lost or doubled: " + a.keySet());
            for (int step = 1; step <= 160; step++) {
                assertEquals(b.get(step), a.get(step), 1e-4, "SFT loss at step " + step + " of the killed-and-resumed run vs an uninterrupted one");
            }
        }
    }

    private JsonNode run(ServiceProcess service, long id) throws Exception {
        return json.readTree(service.get("/api/runs/" + id).body());
    }

    private JsonNode awaitFinished(ServiceProcess service, long id) throws Exception {
        for (int i = 0; i < 1200; i++) {
            JsonNode r = run(service, id);
            String s = r.get("status").asText();
            if (s.equals("succeeded") || s.equals("failed") || s.equals("cancelled")) return r;
            Thread.sleep(250);
        }
        throw new AssertionError("run " + id + " did not finish: " + run(service, id));
    }

    /** The run with its metric series, once the DPO stage's last step is stored (metrics arrive through Kafka). */
    private JsonNode awaitMetrics(ServiceProcess service, long id) throws Exception {
        for (int i = 0; i < 200; i++) {
            JsonNode r = run(service, id);
            for (JsonNode m : r.get("metrics")) if (m.get("stage").asText().equals("dpo") && m.get("step").asInt() == 6) return r;
            Thread.sleep(250);
        }
        throw new AssertionError("the metrics of run " + id + " were not all stored");
    }

    private static Map<Integer, Double> losses(JsonNode run) {
        Map<Integer, Double> out = new TreeMap<>();
        for (JsonNode m : run.get("metrics")) {
            if (m.get("stage").asText().equals("sft") && m.get("name").asText().equals("loss")) out.put(m.get("step").asInt(), m.get("value").asDouble());
        }
        return out;
    }
}
