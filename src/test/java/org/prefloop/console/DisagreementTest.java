package org.prefloop.console;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.awaitility.Awaitility.await;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Disagreement review: only split comparisons are listed, with their votes; an admin's verdict is kept. */
@QuarkusTest
class DisagreementTest {

    @Test
    void splitComparisonsAreListedWithTheirVotesAndCanBeAdjudicated() {
        String ann = Api.newAnnotator(), bob = Api.newAnnotator();
        long split = Api.newComparison("split?", "a", "b");
        long agreed = Api.newComparison("agreed?", "a", "b");
        Api.judge(Api.asAnnotator(ann), split, "A");
        Api.judge(Api.asAnnotator(bob), split, "B");
        Api.judge(Api.asAnnotator(ann), agreed, "A");
        Api.judge(Api.asAnnotator(bob), agreed, "A");
        await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(split) == 2 && Api.storedJudgments(agreed) == 2);

        JsonPath list = Api.asAdmin().get("/api/disagreements").then().statusCode(200).extract().jsonPath();
        List<Integer> ids = list.getList("comparison.id");
        assertTrue(ids.contains((int) split), "the split comparison is listed");
        assertFalse(ids.contains((int) agreed), "an agreed comparison is not");
        int k = ids.indexOf((int) split);
        assertEquals(Map.of("A", 1, "B", 1), list.getMap("[" + k + "].tally"));
        assertEquals(2, list.getList("[" + k + "].votes").size());
        assertNull(list.get("[" + k + "].adjudication"));

        Api.asAdmin().contentType(ContentType.JSON).body(Map.of("choice", "B", "note", "B is correct"))
                .put("/api/disagreements/" + split + "/adjudication").then().statusCode(200)
                .body("adjudication.choice", equalTo("B")).body("adjudication.note", equalTo("B is correct"))
                .body("adjudication.adjudicatedBy", equalTo("admin"));
        // A second decision replaces the first; the votes stay as they were.
        Api.asAdmin().contentType(ContentType.JSON).body(Map.of("choice", "tie"))
                .put("/api/disagreements/" + split + "/adjudication").then().statusCode(200)
                .body("adjudication.choice", equalTo("tie")).body("votes.size()", equalTo(2));
        List<Integer> undecided = Api.asAdmin().get("/api/disagreements?undecided=true").then().statusCode(200)
                .extract().jsonPath().getList("comparison.id");
        assertFalse(undecided.contains((int) split), "a decided comparison leaves the undecided list");

        // A dataset takes the adjudicated verdict over the split vote, unless asked not to.
        Api.asAdmin().contentType(ContentType.JSON).body(Map.of("choice", "B"))
                .put("/api/disagreements/" + split + "/adjudication").then().statusCode(200);
        JsonPath adjudicated = Api.asAdmin().contentType(ContentType.JSON)
                .body(Map.of("name", "adjudicated-" + split, "filters", Map.of("annotators", List.of(ann, bob))))
                .post("/api/datasets").then().statusCode(201).extract().jsonPath();
        assertEquals(2, adjudicated.getInt("items"), "the settled comparison becomes a pair");
        String splitLine = Api.asAdmin().get("/api/datasets/" + adjudicated.getLong("id") + "/export").then().statusCode(200)
                .extract().asString().lines().filter(l -> l.contains("split?")).findFirst().orElseThrow();
        assertEquals("b", JsonPath.from(splitLine).getString("chosen[0].content"), "the adjudicated response is chosen");
        JsonPath votesOnly = Api.asAdmin().contentType(ContentType.JSON)
                .body(Map.of("name", "votes-" + split, "filters", Map.of("annotators", List.of(ann, bob), "preferAdjudicated", false)))
                .post("/api/datasets").then().statusCode(201).extract().jsonPath();
        assertEquals(1, votesOnly.getInt("items"));
        assertEquals(1, votesOnly.getInt("summary.noMajority"), "without the adjudication the split has no majority");

        // Bad input names its field; annotators may not look.
        Api.asAdmin().contentType(ContentType.JSON).body(Map.of("choice", "C"))
                .put("/api/disagreements/" + split + "/adjudication").then().statusCode(422)
                .contentType(containsString("problem+json")).body("field", equalTo("choice"));
        Api.asAdmin().contentType(ContentType.JSON).body(Map.of("choice", "A"))
                .put("/api/disagreements/999999999/adjudication").then().statusCode(404);
        Api.asAdmin().get("/api/disagreements?limit=0").then().statusCode(422).body("field", equalTo("limit"));
        Api.asAnnotator(ann).get("/api/disagreements").then().statusCode(403);
    }
}
