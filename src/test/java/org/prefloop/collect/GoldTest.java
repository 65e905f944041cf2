package org.prefloop.collect;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.awaitility.Awaitility.await;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.nullValue;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Gold items through real HTTP, Kafka and PostgreSQL: mixed into the queue (the test profile's rate
 * is 1, so gold comes first), scored, pausing an annotator below the threshold (test profile: after
 * 2 gold answers), resumed by an admin, on the leaderboard, and kept out of datasets.
 */
@QuarkusTest
class GoldTest {

    @Test
    void goldIsMixedInScoredPausesTheCarelessAndStaysOutOfDatasets() {
        long g1 = Api.newComparison("gold 1: 2+2?", "4", "5");
        long g2 = Api.newComparison("gold 2: capital of Italy?", "Rome", "Milan");
        long plain = Api.newComparison("plain: name a colour", "blue", "seven");
        try {
            mark(g1, "A").then().statusCode(201).body("choice", equalTo("A"));
            mark(g2, "B").then().statusCode(201);
            mark(g2, "A").then().statusCode(200).body("choice", equalTo("A")); // corrected
            mark(987654321L, "A").then().statusCode(404).body("field", equalTo("comparisonId"));
            mark(g1, "C").then().statusCode(422).contentType(startsWith("application/problem+json")).body("field", equalTo("choice"));
            Api.asAdmin().contentType(ContentType.JSON).body(Map.of("choice", "A")).post("/api/gold").then().statusCode(422)
                    .body("field", equalTo("comparisonId"));

            // careless: both gold wrong; careful: both right
            String careless = Api.newAnnotator(), careful = Api.newAnnotator();
            long first = next(careless).getLong("comparisonId");
            assertEquals(g1, first, "gold comes first at rate 1, oldest first");
            judge(careless, first, "B", 1000);
            long second = next(careless).getLong("comparisonId");
            assertEquals(g2, second, "a gold item is never shown twice to one person");
            judge(careless, second, "B", 3000);
            judge(careless, plain, "A", 2500);
            judge(careful, g1, "A", 1000);
            judge(careful, g2, "A", 1000);
            await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(g1) == 2 && Api.storedJudgments(g2) == 2
                    && Api.storedJudgments(plain) == 1);

            Api.asAnnotator(careless).get("/api/tasks/next").then().statusCode(403)
                    .contentType(startsWith("application/problem+json")).body("detail", containsString("0 of 2 gold answers right"));
            Api.asAnnotator(careful).get("/api/tasks/next").then().statusCode(not(equalTo(403)));

            JsonPath q = Api.asAdmin().get("/api/quality").then().statusCode(200).extract().jsonPath();
            Map<String, Object> row = q.getMap("annotators.find { it.annotator == '" + careless + "' }");
            assertEquals(3, row.get("judgments"));
            assertEquals(2500, ((Number) row.get("medianTimeMs")).intValue());
            assertEquals(2, ((Number) row.get("goldAnswered")).intValue());
            assertEquals(0.0, ((Number) row.get("goldAccuracy")).doubleValue());
            assertTrue(((String) row.get("paused")).contains("below 60%"));
            Map<String, Object> good = q.getMap("annotators.find { it.annotator == '" + careful + "' }");
            assertEquals(1.0, ((Number) good.get("goldAccuracy")).doubleValue());
            assertEquals(null, good.get("paused"));
            Api.asAdmin().get("/api/gold/accuracy").then().statusCode(200)
                    .body("find { it.annotator == '" + careless + "' }.answered", equalTo(2))
                    .body("find { it.annotator == '" + careless + "' }.correct", equalTo(0))
                    .body("find { it.annotator == '" + careful + "' }.correct", equalTo(2));

            // gold tests people and trains nothing: only the plain comparison is frozen
            Api.asAdmin().contentType(ContentType.JSON).body(Map.of("name", "no-gold", "kind", "preference",
                            "filters", Map.of("annotators", List.of(careless, careful))))
                    .post("/api/datasets").then().statusCode(201).body("items", equalTo(1)).body("summary.comparisons", equalTo(1));

            // resumed: accuracy counts afresh, so the two old misses no longer pause them
            Api.asAdmin().post("/api/gold/annotators/" + careless + "/resume").then().statusCode(204);
            Api.asAnnotator(careless).get("/api/tasks/next").then().statusCode(not(equalTo(403)));
            Api.asAdmin().post("/api/gold/annotators/" + careless + "/resume").then().statusCode(409).body("field", equalTo("annotator"));
            Api.asAdmin().get("/api/quality").then()
                    .body("annotators.find { it.annotator == '" + careless + "' }.paused", nullValue());
            Api.asAnnotator(careless).post("/api/gold/annotators/" + careless + "/resume").then().statusCode(403);
        } finally {
            // other tests' fresh annotators must not be handed these gold items
            Api.asAdmin().delete("/api/gold/" + g1);
            Api.asAdmin().delete("/api/gold/" + g2);
        }
        Api.asAdmin().delete("/api/gold/" + g1).then().statusCode(404);
        Api.asAdmin().get("/api/gold").then().statusCode(200).body("findAll { it.comparisonId == " + g1 + " }.size()", equalTo(0));
    }

    private static io.restassured.response.Response mark(long comparison, String choice) {
        return Api.asAdmin().contentType(ContentType.JSON).body(Map.of("comparisonId", comparison, "choice", choice)).post("/api/gold");
    }

    private static JsonPath next(String annotator) {
        return Api.asAnnotator(annotator).get("/api/tasks/next").then().statusCode(200).extract().jsonPath();
    }

    private static void judge(String annotator, long comparison, String choice, long timeMs) {
        Api.asAnnotator(annotator).contentType(ContentType.JSON)
                .body(Map.of("eventId", UUID.randomUUID().toString(), "comparisonId", comparison, "choice", choice, "timeSpentMs", timeMs))
                .post("/api/preferences").then().statusCode(202);
    }
}
