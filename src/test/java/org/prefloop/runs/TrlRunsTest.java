package org.prefloop.runs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.RestAssured;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.Generator;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.TextTokenizer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.prefloop.testing.Api.asAdmin;
import static org.prefloop.runs.TrlExecutorTest.MODEL;
import static org.prefloop.runs.TrlExecutorTest.TASK;

/** A run with {@code executor: trl} through the real broker and worker: trained by TRL, registered, and served by PrefLoop's model core. */
@QuarkusTest
class TrlRunsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void model() {
        TrlExecutorTest.model();
    }

    @Test
    void aTrlRunIsTrainedRegisteredAndServed() throws Exception {
        String spec = """
                name: trl-run
                executor: trl
                model_name_or_path: %s
                seed: 5
                sft: {dataset: "%s/sft.jsonl", max_steps: 4, per_device_train_batch_size: 4, learning_rate: 1.0e-3, max_length: 64, r: 4, lora_alpha: 8}
                dpo: {dataset: "%s/dpo.jsonl", eval_split: 0.01, max_steps: 3, per_device_train_batch_size: 4, learning_rate: 1.0e-3, beta: 0.1, max_length: 64, r: 4, lora_alpha: 8}
                """.formatted(MODEL, TASK, TASK);
        long id = asAdmin().contentType("application/yaml").body(spec.getBytes(StandardCharsets.UTF_8))
                .post("/api/runs").then().statusCode(201).extract().jsonPath().getLong("id");
        await().atMost(Duration.ofSeconds(240)).pollInterval(Duration.ofMillis(500)).until(() ->
                List.of("succeeded", "failed").contains(asAdmin().get("/api/runs/" + id).jsonPath().getString("status")));
        JsonPath run = asAdmin().get("/api/runs/" + id).jsonPath();
        assertEquals("succeeded", run.getString("status"), () -> "error: " + run.getString("error"));
        assertEquals("trl", run.getString("summary.executor"));

        // progress arrived on training-events under TRL's names; the first DPO step is ln 2 (policy = reference)
        await().atMost(Duration.ofSeconds(30)).until(() -> metric(id, "dpo", 3, "rewards/margins") != null && metric(id, "dpo", 3, "eval_loss") != null);
        assertEquals(Math.log(2), metric(id, "dpo", 1, "loss"), 1e-3);
        assertTrue(metric(id, "sft", 4, "loss") != null && metric(id, "sft", 4, "tokens_per_second") > 0, "SFT series stored");

        // registered with lineage, as the DJL executor's runs are
        long versionId = run.getLong("modelVersionId");
        JsonPath version = asAdmin().get("/api/models/" + versionId).then().statusCode(200).extract().jsonPath();
        assertEquals(id, version.getLong("runId"));
        assertEquals("trl-run-r" + id, version.getString("name"));
        assertTrue(version.get("metrics.dpo.final") != null);

        // the shared output layout
        Path model = Path.of(version.getString("baseModel"));
        Path out = model.getParent();
        for (String f : List.of("sft/metrics.jsonl", "sft/summary.json", "sft/adapter/adapter_config.json", "sft/adapter/adapter_model.safetensors",
                "dpo/metrics.jsonl", "dpo/summary.json", "dpo/adapter/adapter_model.safetensors", "summary.json",
                "model/config.json", "model/model.safetensors", "model/tokenizer.json", "model/tokenizer_config.json")) {
            assertTrue(Files.exists(out.resolve(f)), f);
        }
        assertFalse(Files.exists(out.resolve("model.writing")));
        JsonNode first = JSON.readTree(Files.readAllLines(out.resolve("dpo/metrics.jsonl")).get(0));
        assertEquals(1, first.get("step").asInt());
        assertEquals(Math.log(2), first.get("loss").asDouble(), 1e-3);
        assertEquals(List.of("sigmoid"), JSON.convertValue(JSON.readTree(out.resolve("dpo/summary.json").toFile()).get("loss_type"), List.class));

        // PrefLoop's model core loads what TRL wrote (weights, PEFT's adapter) and /v1 serves the version with it
        String question = "reverse: abcd";
        String direct;
        try (LlamaModel m = LlamaModel.load(model); TextTokenizer tok = TextTokenizer.load(model)) {
            try (LoraAdapter a = LoraAdapter.load(out.resolve("dpo/adapter"), m)) {
                assertEquals(4, a.config().r());
            }
            String prompt = ChatTemplate.load(model).render(List.of(new ChatTemplate.ChatMessage("user", question)), true);
            direct = new Generator(m, tok).generate(tok.encode(prompt), Generator.GenerationParams.greedy(8)).text();
        }
        JsonPath answer = RestAssured.given().header("Authorization", "Bearer seeded-test-key-0123456789").contentType(ContentType.JSON)
                .body(Map.of("model", "trl-run-r" + id, "messages", List.of(Map.of("role", "user", "content", question)),
                        "temperature", 0, "max_tokens", 8))
                .post("/v1/chat/completions").then().statusCode(200).extract().jsonPath();
        assertEquals(direct, answer.getString("choices[0].message.content"));
        assertTrue(answer.getInt("usage.completion_tokens") > 0);
    }

    private static Double metric(long runId, String stage, int step, String name) {
        List<Map<String, Object>> metrics = asAdmin().get("/api/runs/" + runId).jsonPath().getList("metrics");
        return metrics.stream().filter(m -> stage.equals(m.get("stage")) && ((Number) m.get("step")).intValue() == step && name.equals(m.get("name")))
                .map(m -> ((Number) m.get("value")).doubleValue()).findFirst().orElse(null);
    }
}
