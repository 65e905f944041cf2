package org.prefloop.runs;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.prefloop.model.TinyModelRecipe;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import static org.awaitility.Awaitility.await;
import static org.hamcrest.Matchers.containsString;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.prefloop.testing.Api.adminPassword;
import static org.prefloop.testing.Api.asAdmin;

/** Runs through the real broker: queued on training-jobs, trained by this process's worker, progress stored from training-events. */
@QuarkusTest
class RunsTest {
    static final Path TASK = Path.of("preference-data/synthetic").toAbsolutePath();
    static final Path MODEL = Path.of("target/runs-test-model").toAbsolutePath();

    @BeforeAll
    static void model() {
        if (!Files.exists(MODEL.resolve("config.json"))) TinyModelRecipe.read(TASK.resolve("tiny-model.json")).write(MODEL);
    }

    static String spec(String name, int sftSteps, String sftDataset, String extra) {
        return """
                name: %s
                model_name_or_path: %s
                seed: 5
                sft: {dataset: "%s", max_steps: %d, per_device_train_batch_size: 4, learning_rate: 1.0e-3, max_length: 64, save_steps: 2, r: 4, lora_alpha: 8%s}
                dpo: {dataset: "%s/dpo.jsonl", max_steps: 3, per_device_train_batch_size: 4, learning_rate: 1.0e-3, max_length: 64, r: 4, lora_alpha: 8}
                """.formatted(name, MODEL, sftDataset, sftSteps, extra, TASK);
    }

    public static JsonPath awaitStatus(long id, String status) {
        await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(300)).until(() ->
                asAdmin().get("/api/runs/" + id).jsonPath().getString("status").equals(status));
        return asAdmin().get("/api/runs/" + id).jsonPath();
    }

    @Test
    void aRunIsQueuedTrainedStoredAndRegistered() throws Exception {
        // SFT data from a frozen, uploaded dataset: the run records its content hash
        String sftLines = String.join("\n", Files.readAllLines(TASK.resolve("sft.jsonl")).subList(0, 40)) + "\n";
        JsonPath dataset = asAdmin().contentType("application/x-ndjson").body(sftLines.getBytes(java.nio.charset.StandardCharsets.UTF_8))
                .post("/api/datasets/upload?name=runs-test-sft&kind=sft").then().statusCode(201).extract().jsonPath();
        long datasetId = dataset.getLong("id");

        JsonPath created = asAdmin().contentType("application/yaml").body(spec("runs-test", 4, "dataset:" + datasetId, "").getBytes(java.nio.charset.StandardCharsets.UTF_8))
                .post("/api/runs").then().statusCode(201).extract().jsonPath();
        long id = created.getLong("id");
        assertEquals("queued", created.getString("status"));
        assertTrue(created.getBoolean("preflight.ok"));

        awaitStatus(id, "succeeded");
        // progress is stored from training-events by the ingest consumer: it arrives shortly after
        await().atMost(Duration.ofSeconds(30)).until(() -> asAdmin().get("/api/runs/" + id).jsonPath().getList("metrics", Map.class).stream()
                .anyMatch(m -> m.get("stage").equals("dpo") && ((Number) m.get("step")).intValue() == 3));
        JsonPath run = asAdmin().get("/api/runs/" + id).jsonPath();
        List<Map<String, Object>> metrics = run.getList("metrics");
        assertTrue(metrics.stream().anyMatch(m -> m.get("stage").equals("sft") && m.get("name").equals("loss") && ((Number) m.get("step")).intValue() == 4),
                "the SFT loss series is stored: " + metrics);
        assertTrue(metrics.stream().anyMatch(m -> m.get("stage").equals("dpo") && m.get("name").equals("rewards/accuracies")), "DPO metrics are stored");
        assertEquals(1, metrics.stream().filter(m -> m.get("stage").equals("sft") && m.get("name").equals("loss")
                && ((Number) m.get("step")).intValue() == 1).count(), "stored once");
        long versionId = run.getLong("modelVersionId");
        JsonPath version = asAdmin().get("/api/models/" + versionId).then().statusCode(200).extract().jsonPath();
        assertEquals(id, version.getLong("runId"));
        assertEquals("runs-test-r" + id, version.getString("name"));
        assertEquals(dataset.getString("contentHash"), version.getList("datasetHashes").get(0));
        assertNotNull(version.get("metrics.dpo.final"));
        assertTrue(Files.exists(Path.of(version.getString("baseModel")).resolve("model.safetensors")));

        // the worker's gauges for the operator's dashboards
        String prometheus = org.prefloop.testing.Api.management().get("/q/metrics").then().statusCode(200).extract().asString();
        for (String gauge : List.of("prefloop_training_loss", "prefloop_training_tokens_per_second", "prefloop_training_reward_accuracy")) {
            assertTrue(prometheus.lines().anyMatch(l -> l.startsWith(gauge + "{") && l.contains("run=\"" + id + "\"")), gauge + " for run " + id);
        }

        // the event stream of a finished run: its stored metrics, then its final status
        String events = sse("/api/runs/" + id + "/events");
        assertTrue(events.contains("\"type\":\"metrics\"") && events.contains("\"stage\":\"dpo\""), events);
        assertTrue(events.strip().endsWith("\"status\":\"succeeded\"}"), events);
    }

    @Test
    void aRunCanBeCancelledAndBadSpecsAreRefusedBeforeQueueing() {
        long id = asAdmin().contentType("application/yaml").body(spec("runs-cancel", 100_000, TASK + "/sft.jsonl", ", num_train_epochs: 100").getBytes(java.nio.charset.StandardCharsets.UTF_8))
                .post("/api/runs").then().statusCode(201).extract().jsonPath().getLong("id");
        await().atMost(Duration.ofSeconds(60)).until(() -> {
            Integer step = asAdmin().get("/api/runs/" + id).jsonPath().get("step");
            return step != null && step > 0;
        });
        asAdmin().post("/api/runs/" + id + "/cancel").then().statusCode(200);
        JsonPath run = awaitStatus(id, "cancelled");
        assertTrue(run.getBoolean("cancelRequested"));
        asAdmin().post("/api/runs/" + id + "/cancel").then().statusCode(409).contentType("application/problem+json");

        asAdmin().contentType("application/yaml").body(spec("runs-bad", 3, "/nowhere/sft.jsonl", "").getBytes(java.nio.charset.StandardCharsets.UTF_8))
                .post("/api/runs").then().statusCode(422).contentType("application/problem+json").body("detail", containsString("nowhere"));
        asAdmin().contentType("application/yaml").body(spec("runs-typo", 3, TASK + "/sft.jsonl", ", learnig_rate: 1").getBytes(java.nio.charset.StandardCharsets.UTF_8))
                .post("/api/runs").then().statusCode(422).body("detail", containsString("sft.learnig_rate"));
        asAdmin().contentType("application/yaml").body(spec("runs-misplaced", 3, TASK + "/sft.jsonl", ", beta: 1").getBytes(java.nio.charset.StandardCharsets.UTF_8))
                .post("/api/runs").then().statusCode(422).contentType("application/problem+json")
                .body("detail", containsString("sft.beta is a setting of the dpo stage"));
        asAdmin().contentType(ContentType.JSON).body("{\"model_name_or_path\": \"version:999999\", \"dpo\": {\"dataset\": \"x\"}}")
                .post("/api/runs").then().statusCode(422).body("detail", containsString("version:999999"));
        asAdmin().get("/api/runs/999999").then().statusCode(404);
    }

    @Test
    void aDivergingRunFailsWithItsReason() {
        long id = asAdmin().contentType("application/yaml").body(spec("runs-nan", 6, TASK + "/sft.jsonl", ", learning_rate: 1.0e+30, max_grad_norm: 0").getBytes(java.nio.charset.StandardCharsets.UTF_8))
                .post("/api/runs").then().statusCode(201).extract().jsonPath().getLong("id");
        JsonPath run = awaitStatus(id, "failed");
        assertTrue(run.getString("error").matches(".*(loss|gradient norm) is (NaN|Infinity).*"), run.getString("error"));
        assertTrue(run.get("modelVersionId") == null, "no version registered");
    }

    private static String sse(String path) throws Exception {
        HttpClient client = HttpClient.newHttpClient();
        HttpRequest req = HttpRequest.newBuilder(URI.create("http://localhost:" + io.restassured.RestAssured.port + path))
                .header("Authorization", "Basic " + Base64.getEncoder().encodeToString(("admin:" + adminPassword()).getBytes()))
                .header("Accept", "text/event-stream").timeout(Duration.ofSeconds(30)).build();
        return String.join("\n", client.send(req, HttpResponse.BodyHandlers.ofLines()).body().filter(l -> l.startsWith("data:")).toList());
    }
}
