package org.prefloop.collect;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import jakarta.inject.Inject;
import jakarta.persistence.EntityManager;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;
import org.prefloop.testing.Browser;

import java.time.Duration;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

import static org.awaitility.Awaitility.await;
import static org.hamcrest.Matchers.containsString;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Who is shown which comparison: overlap, never twice to one person, randomised and recorded order. */
@QuarkusTest
class AssignmentTest {

    @Inject
    EntityManager em;

    /** Other suites' comparisons share this database; take them out of the queue so each test sees only its own. */
    @BeforeEach
    void onlyThisTestsComparisonsAreOpen() {
        QuarkusTransaction.requiringNew().run(() -> em.createNativeQuery("update comparisons set assigned = 1000000").executeUpdate());
    }

    private static Browser annotator() {
        String name = Api.newAnnotator();
        return Browser.signIn(name, "password-" + name);
    }

    private static JsonPath next(Browser who, String pending) {
        var r = who.script().queryParam("pending", pending).get("/api/tasks/next");
        return r.statusCode() == 204 ? null : r.then().statusCode(200).extract().jsonPath();
    }

    private static void judge(Browser who, JsonPath task, String shownChoice) {
        String side = switch (shownChoice) {
            case "left" -> task.getString("left.side");
            case "right" -> task.getString("right.side");
            default -> shownChoice;
        };
        who.script().contentType(ContentType.JSON).body(Map.of("eventId", UUID.randomUUID().toString(),
                "comparisonId", task.getLong("comparisonId"), "choice", side)).post("/api/preferences").then().statusCode(202);
    }

    @Test
    void eachComparisonGoesToTwoAnnotatorsAndNeverTwiceToOne() {
        long first = Api.newComparison("Capital of France?", "Paris", "Lyon");
        long second = Api.newComparison("Capital of Italy?", "Rome", "Milan");
        Browser ann = annotator(), bea = annotator(), cid = annotator();

        JsonPath a1 = next(ann, "");
        assertEquals(first, a1.getLong("comparisonId"));
        assertEquals(a1.getLong("assignmentId"), next(ann, "").getLong("assignmentId"), "an open assignment is offered until answered");
        JsonPath a2 = next(ann, a1.getString("assignmentId"));
        assertEquals(second, a2.getLong("comparisonId"), "a held-back judgment's comparison is not offered again");

        assertEquals(first, next(bea, "").getLong("comparisonId"), "half-covered comparisons go first");
        JsonPath c1 = next(cid, "");
        assertEquals(second, c1.getLong("comparisonId"), "the first comparison has its two annotators");
        assertNull(next(cid, c1.getString("assignmentId")), "nothing else is open for the third annotator");

        judge(ann, a1, "left");
        JsonPath after = next(ann, "");
        assertEquals(a2.getLong("assignmentId"), after.getLong("assignmentId"), "an answered comparison is not offered again");
        ann.script().post("/api/tasks/" + a2.getLong("assignmentId") + "/skip").then().statusCode(204);
        assertNull(next(ann, ""), "a skipped comparison is not offered to the same person again");
        ann.script().get("/api/tasks/stats").then().statusCode(200).body("today", org.hamcrest.Matchers.equalTo(1));
    }

    /** One comparison whose two slots the first two of three new annotators hold; the third gets nothing. */
    private record Covered(long comparison, Browser ann, Browser bea, Browser cid, JsonPath annsTask) {
        static Covered of(String question, String a, String b) {
            long comparison = Api.newComparison(question, a, b);
            Browser ann = annotator(), bea = annotator(), cid = annotator();
            JsonPath task = next(ann, "");
            next(bea, "");
            assertNull(next(cid, ""));
            return new Covered(comparison, ann, bea, cid, task);
        }
    }

    @Test
    void skippingGivesTheSlotToSomeoneElse() {
        Covered c = Covered.of("Largest planet?", "Jupiter", "Saturn");
        c.ann().script().post("/api/tasks/" + c.annsTask().getLong("assignmentId") + "/skip").then().statusCode(204);
        assertEquals(c.comparison(), next(c.cid(), "").getLong("comparisonId"));
        c.bea().script().post("/api/tasks/" + c.annsTask().getLong("assignmentId") + "/skip").then().statusCode(404);
    }

    @Inject
    TaskQueue queue;

    @Test
    void anAbandonedAssignmentGivesItsSlotBack() {
        Covered c = Covered.of("Smallest prime?", "2", "1");
        Browser ann = c.ann(), cid = c.cid();
        long only = c.comparison();
        JsonPath a = c.annsTask();
        queue.releaseExpired(java.time.OffsetDateTime.now().minusHours(1));
        assertNull(next(cid, ""), "fresh assignments keep their slots");
        assertTrue(queue.releaseExpired(java.time.OffsetDateTime.now().plusSeconds(1)) >= 2, "both open assignments (and other tests' ones) are released");
        assertEquals(0, queue.releaseExpired(java.time.OffsetDateTime.now().plusSeconds(1)), "released once");
        assertEquals(only, next(cid, "").getLong("comparisonId"));
        assertNull(next(ann, ""), "the one who abandoned it does not get it again");
        assertEquals(a.getLong("comparisonId"), only);
    }

    @Test
    void positionsAreDrawnPerAssignmentAndTheVerdictIsStoredInTheComparisonsOrder() {
        Set<String> orders = new HashSet<>();
        String name = Api.newAnnotator();
        Browser ann = Browser.signIn(name, "password-" + name);
        int aOnLeft = 0;
        for (int i = 0; i < 16; i++) Api.newComparison("Question " + i + "?", "right answer " + i, "wrong answer " + i);
        JsonPath task;
        String pending = "";
        int seen = 0;
        while ((task = next(ann, pending)) != null && seen < 16) {
            orders.add(task.getString("left.side") + task.getString("right.side"));
            if (task.getString("left.side").equals("A")) aOnLeft++;
            assertTrue(task.getString(task.getString("left.side").equals("A") ? "left.text" : "right.text").startsWith("right answer"),
                    "each shown side names its response in the comparison's own order");
            judge(ann, task, task.getString("left.side").equals("A") ? "left" : "right"); // always the comparison's A
            seen++;
        }
        assertEquals(16, seen);
        assertEquals(Set.of("AB", "BA"), orders, "both orders appear (16 draws: the chance of one order only is 2^-15)");
        // Always choosing the comparison's A: the stored verdicts are all A, and the position-bias
        // measure sees the share of those that were on the left of this annotator's screen.
        double expectedLeftShare = aOnLeft / 16.0;
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
            JsonPath quality = Api.asAdmin().get("/api/quality").then().statusCode(200).extract().jsonPath();
            Map<String, Object> mine = quality.getMap("annotators.find { it.annotator == '" + name + "' }");
            assertEquals(16, ((Number) mine.get("judgments")).intValue());
            assertEquals(expectedLeftShare, ((Number) mine.get("leftShare")).doubleValue(), 1e-9);
        });
    }

    @Test
    void aSecondJudgmentOnAnAnsweredAssignmentIsRefusedButARetryIsNot() {
        Api.newComparison("Boiling point of water at sea level?", "100 C", "90 C");
        Browser ann = annotator();
        JsonPath task = next(ann, "");
        String eventId = UUID.randomUUID().toString();
        Map<String, Object> body = Map.of("eventId", eventId, "comparisonId", task.getLong("comparisonId"), "choice", "A");
        ann.script().contentType(ContentType.JSON).body(body).post("/api/preferences").then().statusCode(202);
        ann.script().contentType(ContentType.JSON).body(body).post("/api/preferences").then().statusCode(202);
        ann.script().contentType(ContentType.JSON).body(Map.of("eventId", UUID.randomUUID().toString(),
                        "comparisonId", task.getLong("comparisonId"), "choice", "B")).post("/api/preferences")
                .then().statusCode(409).body("detail", containsString("already judged"));
        long comparison = task.getLong("comparisonId");
        await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(comparison) == 1);
        JsonPath history = ann.script().get("/api/tasks/history").then().statusCode(200).extract().jsonPath();
        assertEquals(comparison, history.getLong("[0].comparisonId"));
        assertEquals(task.getString("left.side").equals("A") ? "A" : "B", history.getString("[0].shown"),
                "history shows the verdict as it was on the annotator's screen");
        assertNotEquals(null, history.getString("[0].prompt"));
    }
}
