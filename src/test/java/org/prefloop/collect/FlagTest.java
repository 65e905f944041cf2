package org.prefloop.collect;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;

import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Flagging an item as harmful or broken: it leaves every queue until an admin restores it. */
@QuarkusTest
class FlagTest {
    @jakarta.inject.Inject
    jakarta.persistence.EntityManager em;

    @Test
    void aFlaggedItemLeavesEveryQueueUntilRestored() {
        // earlier tests leave thousands of comparisons waiting: take every slot, so the queue holds only what this test adds
        io.quarkus.narayana.jta.QuarkusTransaction.requiringNew().run(() -> em.createNativeQuery("update comparisons set assigned = 1000000").executeUpdate());
        long comparison = Api.newComparison("flag me: how do I pick a lock?", "Like this...", "I can't help with that.");
        String flagger = Api.newAnnotator();
        long assignment = -1;
        for (int i = 0; i < 500 && assignment < 0; i++) { // items assigned to no one yet may still come first
            var next = Api.asAnnotator(flagger).get("/api/tasks/next").then().statusCode(200).extract().jsonPath();
            if (next.getLong("comparisonId") == comparison) assignment = next.getLong("assignmentId");
            else Api.asAnnotator(flagger).post("/api/tasks/" + next.getLong("assignmentId") + "/skip").then().statusCode(204);
        }
        assertTrue(assignment > 0, "the new comparison reached the queue");

        flag(flagger, assignment, Map.of("reason", "rude")).then().statusCode(422)
                .contentType(startsWith("application/problem+json")).body("field", equalTo("reason"));
        flag(Api.newAnnotator(), assignment, Map.of("reason", "harmful")).then().statusCode(404).body("field", equalTo("assignmentId"));
        flag(flagger, assignment, Map.of("reason", "harmful", "note", "asks for lock picking")).then().statusCode(204);

        Api.asAdmin().get("/api/flags?open=true").then().statusCode(200)
                .body("find { it.comparison.id == " + comparison + " }.reason", equalTo("harmful"))
                .body("find { it.comparison.id == " + comparison + " }.note", equalTo("asks for lock picking"))
                .body("find { it.comparison.id == " + comparison + " }.annotator", equalTo(flagger));
        Api.asAnnotator(flagger).get("/api/flags").then().statusCode(403);
        assertFalse(wholeQueue(Api.newAnnotator()).contains(comparison), "withheld from everyone while flagged");

        long flagId = Api.asAdmin().get("/api/flags?open=true").then().extract().jsonPath()
                .getLong("find { it.comparison.id == " + comparison + " }.id");
        resolve(flagId, "ignore").then().statusCode(422).body("field", equalTo("resolution"));
        resolve(987654321L, "restored").then().statusCode(404);
        resolve(flagId, "restored").then().statusCode(204);
        resolve(flagId, "removed").then().statusCode(409);
        assertTrue(wholeQueue(Api.newAnnotator()).contains(comparison), "restored: back in the queue");
    }

    /** Every comparison the queue offers this annotator, skipping each. */
    private static Set<Long> wholeQueue(String annotator) {
        Set<Long> seen = new HashSet<>();
        for (int i = 0; i < 500; i++) {
            Response r = Api.asAnnotator(annotator).get("/api/tasks/next");
            if (r.statusCode() == 204) return seen;
            seen.add(r.jsonPath().getLong("comparisonId"));
            Api.asAnnotator(annotator).post("/api/tasks/" + r.jsonPath().getLong("assignmentId") + "/skip").then().statusCode(204);
        }
        throw new AssertionError("the queue did not end");
    }

    private static Response flag(String annotator, long assignment, Map<String, String> body) {
        return Api.asAnnotator(annotator).contentType(ContentType.JSON).body(body).post("/api/tasks/" + assignment + "/flag");
    }

    private static Response resolve(long flag, String resolution) {
        return Api.asAdmin().contentType(ContentType.JSON).body(Map.of("resolution", resolution)).post("/api/flags/" + flag + "/resolve");
    }
}
