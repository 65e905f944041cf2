package org.prefloop.collect;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;
import org.prefloop.runs.DemoModelProfile;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The LLM judge against this service's own /v1 (the bundled demo model, which reverses words
 * and so never names a response): every comparison is judged in both orders, a verdict that is
 * not readable both ways is a tie, the labels are stored as the judge's, the quality page shows
 * its agreement with people, and a dataset takes its labels only above the agreement asked for.
 */
@QuarkusTest
@TestProfile(DemoModelProfile.class)
class LlmJudgeThroughV1Test {

    @Test
    void theJudgesLabelsAreStoredComparedWithPeopleAndGatedByAgreement() {
        String person = Api.newAnnotator(), other = Api.newAnnotator();
        long c1 = Api.newComparison("reverse: abc", "cba", "bca");
        long c2 = Api.newComparison("reverse: dog", "god", "gdo");
        for (String p : List.of(person, other)) {
            Api.judge(Api.asAnnotator(p), c1, "A");
            Api.judge(Api.asAnnotator(p), c2, "A");
        }
        String key = Api.asAdmin().contentType(ContentType.JSON).body(Map.of("name", "judge"))
                .post("/api/keys").then().statusCode(201).extract().jsonPath().getString("key");

        JsonPath judged = Api.asAdmin().contentType(ContentType.JSON)
                .body(Map.of("model", "prefloop", "apiKey", key, "comparisonIds", List.of(c1, c2)))
                .post("/api/judges/llm").then().statusCode(200).extract().jsonPath();
        assertEquals("llm:prefloop", judged.getString("judge"));
        assertEquals(2, judged.getInt("judged"));
        await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(c1) == 3 && Api.storedJudgments(c2) == 3);

        List<Map<String, Object>> labels = Api.asAdmin().get("/api/comparisons/" + c1 + "/preferences").jsonPath().getList("findAll { it.annotator == 'llm:prefloop' }");
        assertEquals(1, labels.size(), "one label per judge and comparison: " + labels);
        assertEquals("tie", labels.get(0).get("choice"), "a model that names neither response gives a tie: " + labels);
        assertTrue(labels.get(0).get("rationale").toString().contains("swapped:"), "both answers are kept: " + labels);

        // judging again stores nothing new
        Api.asAdmin().contentType(ContentType.JSON).body(Map.of("model", "prefloop", "apiKey", key, "comparisonIds", List.of(c1)))
                .post("/api/judges/llm").then().statusCode(200);

        JsonPath quality = Api.asAdmin().get("/api/quality/judges").then().statusCode(200).extract().jsonPath();
        assertTrue(quality.getInt("find { it.judge == 'llm:prefloop' }.shared") >= 2, quality.prettify());
        assertEquals(0.0, quality.getDouble("find { it.judge == 'llm:prefloop' }.agreement"), 1e-9, "it never agreed with the people");

        Map<String, Object> trusting = Map.of("annotators", List.of(person, other, "llm:prefloop"), "includeJudges", true, "judgeMinAgreement", 0.0);
        Map<String, Object> strict = Map.of("annotators", List.of(person, other, "llm:prefloop"), "includeJudges", true, "judgeMinAgreement", 0.5);
        int withJudge = Api.asAdmin().contentType(ContentType.JSON).body(Map.of("name", "judge-trusted", "filters", trusting))
                .post("/api/datasets").then().statusCode(201).extract().jsonPath().getInt("summary.judgments");
        int withoutJudge = Api.asAdmin().contentType(ContentType.JSON).body(Map.of("name", "judge-gated", "filters", strict))
                .post("/api/datasets").then().statusCode(201).extract().jsonPath().getInt("summary.judgments");
        assertEquals(6, withJudge, "the people's four votes and the judge's two");
        assertEquals(4, withoutJudge, "below the agreement asked for, the judge's labels stay out");
        Api.asAdmin().contentType(ContentType.JSON).body(Map.of("name", "judge-bad", "filters", Map.of("includeJudges", true, "judgeMinAgreement", 2)))
                .post("/api/datasets").then().statusCode(422);
    }
}
