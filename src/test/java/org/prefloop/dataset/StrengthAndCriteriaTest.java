package org.prefloop.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import org.junit.jupiter.api.Test;
import org.prefloop.collect.PreferenceEvent;
import org.prefloop.testing.Api;
import org.prefloop.testing.Topics;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.awaitility.Awaitility.await;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.nullValue;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * How much better, and per-criterion verdicts: through HTTP, the real Kafka broker and PostgreSQL
 * into the raw store, then into frozen datasets as TRL's {@code margin}, as pair weights, and as
 * datasets of one criterion. The test profile's project asks for helpfulness, correctness and safety.
 */
@QuarkusTest
class StrengthAndCriteriaTest {
    private static final double MUCH = 1, BETTER = 2 / 3.0, SLIGHTLY = 1 / 3.0;
    private final ObjectMapper json = new ObjectMapper();

    @Test
    void strengthsBecomeMarginsAndWeightsAndACriterionMakesItsOwnPairs() throws Exception {
        String x = Api.newAnnotator(), y = Api.newAnnotator(), z = Api.newAnnotator();
        long c1 = Api.newComparison("q1", "a1", "b1");
        long c2 = Api.newComparison("q2", "a2", "b2");
        long c3 = Api.newComparison("q3", "a3", "b3");
        long c4 = Api.newComparison("q4", "a4", "b4");
        post(x, c1, "A", "much_better", Map.of("helpfulness", "A", "safety", "B"));
        post(y, c1, "A", "slightly_better", Map.of("safety", "B"));
        post(z, c1, "B", "better", Map.of("safety", "B"));
        post(x, c2, "B", null, null);                       // an unqualified B counts as "better"
        post(y, c2, "B", "better", null);
        post(z, c2, "tie", null, null);
        post(x, c3, "A", "slightly_better", null);
        post(y, c3, "B", "much_better", null);
        post(z, c3, "B", "slightly_better", null);
        post(x, c4, "A", "slightly_better", null);
        post(y, c4, "A", "slightly_better", null);
        post(z, c4, "B", "much_better", null);
        await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(c1) == 3 && Api.storedJudgments(c2) == 3
                && Api.storedJudgments(c3) == 3 && Api.storedJudgments(c4) == 3);

        // kept raw, beside the overall verdict
        Api.asAdmin().get("/api/comparisons/" + c1 + "/preferences").then()
                .body("find { it.annotator == '" + x + "' }.strength", equalTo("much_better"))
                .body("find { it.annotator == '" + x + "' }.criteria.helpfulness", equalTo("A"))
                .body("find { it.annotator == '" + x + "' }.criteria.safety", equalTo("B"))
                .body("find { it.annotator == '" + z + "' }.criteria.helpfulness", nullValue());
        Api.asAdmin().get("/api/comparisons/" + c2 + "/preferences").then()
                .body("find { it.annotator == '" + x + "' }.strength", nullValue());

        List<String> who = List.of(x, y, z);
        double[] margins = {(MUCH + SLIGHTLY - BETTER) / 3, (BETTER + BETTER + 0) / 3, (-SLIGHTLY + MUCH + SLIGHTLY) / 3,
                (SLIGHTLY + SLIGHTLY - MUCH) / 3};
        List<JsonNode> plain = export(freeze("graded", Map.of("annotators", who)).then().statusCode(201)
                .body("items", equalTo(4)).extract().jsonPath());
        for (int i = 0; i < 4; i++) {
            assertEquals(margins[i], plain.get(i).get("margin").asDouble(), 1e-9, "margin of pair " + (i + 1));
            assertEquals(null, plain.get(i).get("weight"), "weights stay 1 unless asked for");
        }
        assertEquals("a1", plain.get(0).get("chosen").get(0).get("content").asText());
        assertEquals("b3", plain.get(2).get("chosen").get(0).get("content").asText());

        // the dataset browser: search by text, filter by consensus and agreement, page by page
        long graded = freeze("graded-browse", Map.of("annotators", who)).then().statusCode(201).extract().jsonPath().getLong("id");
        String items = "/api/datasets/" + graded + "/items";
        Api.asAdmin().get(items + "?q=Q3").then().statusCode(200).body("total", equalTo(1))
                .body("items[0].comparisonId", equalTo((int) c3)).body("items[0].consensus", equalTo("B"))
                .body("items[0].rawVotes.size()", equalTo(3));
        Api.asAdmin().get(items + "?maxAgreement=0.6").then().body("total", equalTo(0)); // every pair has 2 votes of 3
        Api.asAdmin().get(items + "?maxAgreement=0.7").then().body("total", equalTo(4));
        Api.asAdmin().get(items + "?consensus=B").then().body("total", equalTo(2));
        Api.asAdmin().get(items + "?limit=2&offset=2").then().body("total", equalTo(4)).body("items.size()", equalTo(2))
                .body("items[0].position", equalTo(2));
        Api.asAdmin().get(items + "?q=50%25").then().body("total", equalTo(0));
        Api.asAdmin().get(items + "?limit=0").then().statusCode(422).body("field", equalTo("limit"));
        Api.asAdmin().get(items + "?consensus=tie").then().statusCode(422).body("field", equalTo("consensus"));
        Api.asAdmin().get("/api/datasets/987654321/items").then().statusCode(404);

        // weighted by strength: the weight is the margin; c4's majority said A, but by less than the dissent
        JsonPath weighted = freeze("by-strength", Map.of("annotators", who, "weightByStrength", true, "weightByAgreement", true))
                .then().statusCode(201).body("items", equalTo(3)).body("summary.noPositiveMargin", equalTo(1)).extract().jsonPath();
        List<JsonNode> w = export(weighted);
        assertEquals(margins[0] * 2 / 3, w.get(0).get("weight").asDouble(), 1e-9, "agreement 2/3 times margin");
        assertEquals(margins[1] * 2 / 3, w.get(1).get("weight").asDouble(), 1e-9);
        assertEquals(margins[2] * 2 / 3, w.get(2).get("weight").asDouble(), 1e-9);

        // one criterion: only the votes that judged it count; the overall verdict (A for c1) does not
        JsonPath safety = freeze("safety", Map.of("annotators", who, "criterion", "safety")).then().statusCode(201)
                .body("items", equalTo(1)).body("summary.judgments", equalTo(3)).extract().jsonPath();
        JsonNode safe = export(safety).get(0);
        assertEquals("b1", safe.get("chosen").get(0).get("content").asText());
        assertFalse(safe.has("margin"), "strength is said of the overall verdict, so a criterion's pairs have no margin");

        // nobody said how much better: no margin at all, so the export is what it was before strengths
        String plainOne = Api.newAnnotator();
        long c5 = Api.newComparison("q5", "a5", "b5");
        post(plainOne, c5, "A", null, null);
        await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(c5) == 1);
        JsonNode ungraded = export(freeze("ungraded", Map.of("annotators", List.of(plainOne))).then().statusCode(201).extract().jsonPath()).get(0);
        assertFalse(ungraded.has("margin"));
    }

    @Test
    void badStrengthsAndCriteriaAreRefusedByFieldAndNothingReachesKafka() throws Exception {
        long comparison = Api.newComparison("Name a prime.", "7", "8");
        String annotator = Api.newAnnotator();
        long before = Topics.endOffsetSum(PreferenceEvent.TOPIC);
        Object[][] cases = {
                {body(comparison, "A", "huge", null), "strength"},
                {body(comparison, "tie", "better", null), "strength"},
                {body(comparison, "A", 3, null), "strength"},
                {body(comparison, "A", null, Map.of("style", "A")), "criteria.style"},
                {body(comparison, "A", null, Map.of("safety", "C")), "criteria.safety"},
                {body(comparison, "A", null, Map.of("safety", 1)), "criteria.safety"},
                {body(comparison, "A", null, "safety"), "criteria"},
        };
        for (Object[] c : cases) {
            Api.asAnnotator(annotator).contentType(ContentType.JSON).body(c[0]).post("/api/preferences").then()
                    .statusCode(422).contentType(startsWith("application/problem+json")).body("field", equalTo(c[1]));
        }
        assertEquals(before, Topics.endOffsetSum(PreferenceEvent.TOPIC), "no refused judgment may be produced to Kafka");

        freeze("no-such-criterion", Map.of("criterion", "style")).then().statusCode(422).body("field", equalTo("filters.criterion"));
        freeze("criterion-strength", Map.of("criterion", "safety", "weightByStrength", true)).then().statusCode(422)
                .body("field", equalTo("filters.weightByStrength"));
    }

    private static Map<String, Object> body(long comparison, String choice, Object strength, Object criteria) {
        Map<String, Object> body = new HashMap<>(Map.of("eventId", UUID.randomUUID().toString(), "comparisonId", comparison, "choice", choice));
        if (strength != null) body.put("strength", strength);
        if (criteria != null) body.put("criteria", criteria);
        return body;
    }

    private static void post(String annotator, long comparison, String choice, String strength, Map<String, String> criteria) {
        Api.asAnnotator(annotator).contentType(ContentType.JSON).body(body(comparison, choice, strength, criteria))
                .post("/api/preferences").then().statusCode(202);
    }

    private static io.restassured.response.Response freeze(String name, Map<String, Object> filters) {
        return Api.asAdmin().contentType(ContentType.JSON).body(Map.of("name", name, "kind", "preference", "filters", filters))
                .post("/api/datasets");
    }

    private List<JsonNode> export(JsonPath dataset) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        for (String l : Api.asAdmin().get("/api/datasets/" + dataset.getLong("id") + "/export").then().statusCode(200).extract().asString()
                .split("\n")) {
            if (!l.isBlank()) out.add(json.readTree(l));
        }
        return out;
    }
}
