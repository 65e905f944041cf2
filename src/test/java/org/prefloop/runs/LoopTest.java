package org.prefloop.runs;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import org.junit.jupiter.api.Test;
import org.prefloop.train.TrainingData;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.prefloop.testing.Api.asAdmin;

/**
 * The loop on the bundled demo model: it serves, generates the next round of comparisons, the
 * checker judges them, a DPO round trains on what was judged, the new version is promoted, and
 * held-out accuracy and head-to-head ratings show the improvement.
 */
@QuarkusTest
@TestProfile(DemoModelProfile.class)
class LoopTest {
    static final Path TASK = Path.of("preference-data/synthetic").toAbsolutePath();

    static double accuracy(String model) {
        return asAdmin().contentType(ContentType.JSON).body(Map.of("file", "preference-data/synthetic/heldout.jsonl", "model", model))
                .post("/api/evaluations").then().statusCode(200).extract().jsonPath().getDouble("exactMatch");
    }

    static List<Object> prompts(String file, int n) {
        List<Object> out = new ArrayList<>();
        for (var row : TrainingData.readLines(TASK.resolve(file)).subList(0, n)) out.add(row.get("prompt"));
        return out;
    }

    static JsonPath judgeAndAwait(JsonPath round) {
        JsonPath judged = asAdmin().contentType(ContentType.JSON).body(Map.of("comparisonIds", round.getList("comparisonIds")))
                .post("/api/judges/reverse").then().statusCode(200).extract().jsonPath();
        for (Object id : round.getList("comparisonIds")) {
            await().atMost(Duration.ofSeconds(30)).until(() -> !asAdmin().get("/api/comparisons/" + id + "/preferences").jsonPath().getList("$").isEmpty());
        }
        return judged;
    }

    @Test
    void theDemoModelImprovesThroughOneRoundOfTheLoop() {
        String base = asAdmin().get("/api/models").jsonPath().getString("find { it.promoted }.name");
        double before = accuracy("prefloop");

        JsonPath round = asAdmin().contentType(ContentType.JSON).body(Map.of("prompts", prompts("dpo.jsonl", 800), "mode", "samples",
                "temperature", 0.7, "max_tokens", 8, "seed", 3)).post("/api/rounds").then().statusCode(201).extract().jsonPath();
        assertTrue(round.getInt("created") > 50, "comparisons generated: " + round.prettify());
        String since = java.time.Instant.now().minusSeconds(1).toString();
        JsonPath judged = judgeAndAwait(round);
        assertEquals(round.getInt("created"), judged.getInt("judged"));

        long dataset = asAdmin().contentType(ContentType.JSON).body(Map.of("name", "loop-round-1", "filters",
                        Map.of("annotators", List.of("checker:reverse"), "includeJudges", true, "from", since)))
                .post("/api/datasets").then().statusCode(201).extract().jsonPath().getLong("id");
        System.out.println("round: " + round.getInt("created") + " comparisons, dataset " + asAdmin().get("/api/datasets/" + dataset).jsonPath().getInt("items") + " pairs");
        long run = asAdmin().contentType("application/yaml").body(("""
                name: loop-round-1
                seed: 4
                dpo: {dataset: "dataset:%d", num_train_epochs: 2, per_device_train_batch_size: 8, learning_rate: 3.0e-4,
                      beta: 0.5, loss_type: [sigmoid, sft], r: 16, lora_alpha: 32, max_length: 64}
                """.formatted(dataset)).getBytes(java.nio.charset.StandardCharsets.UTF_8))
                .post("/api/runs").then().statusCode(201).extract().jsonPath().getLong("id");
        JsonPath finished = RunsTest.awaitStatus(run, "succeeded");
        long version = finished.getLong("modelVersionId");
        String name = asAdmin().get("/api/models/" + version).then().statusCode(200).extract().jsonPath().getString("name");
        // the loop promotes a version only once it has beaten its parent head to head
        asAdmin().post("/api/models/" + version + "/promote?require=head-to-head").then().statusCode(409)
                .body("detail", org.hamcrest.Matchers.containsString("never compared"));

        JsonPath h2h = asAdmin().contentType(ContentType.JSON).body(Map.of("prompts", prompts("heldout.jsonl", 200), "mode", "versions",
                "versions", List.of(name, base), "max_tokens", 8)).post("/api/rounds").then().statusCode(201).extract().jsonPath();
        judgeAndAwait(h2h);
        JsonPath ratings = asAdmin().get("/api/ratings?judges=only").then().statusCode(200).extract().jsonPath();
        System.out.println("ratings: " + ratings.prettify());
        String newVsOld = "winRates.find { it.version == '" + name + "' && it.opponent == '" + base + "' }";
        assertTrue(ratings.getDouble(newVsOld + ".winRate") > 0.5, "the new version wins head to head: " + ratings.get(newVsOld));
        assertTrue(ratings.getDouble("ratings.find { it.version == '" + name + "' }.low")
                > ratings.getDouble("ratings.find { it.version == '" + base + "' }.high"), "its rating's interval lies above the old one's");

        asAdmin().post("/api/models/" + version + "/promote?require=head-to-head").then().statusCode(200);
        double after = accuracy("prefloop");
        System.out.printf("held-out exact match: %s %.3f -> %s %.3f%n", base, before, name, after);
        assertTrue(after > before, "the promoted version is more accurate on held-out words: " + before + " -> " + after);
    }
}
