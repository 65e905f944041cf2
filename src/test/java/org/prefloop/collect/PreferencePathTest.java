package org.prefloop.collect;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;
import org.prefloop.testing.Topics;

import java.time.Duration;
import java.util.Map;
import java.util.UUID;

import static org.awaitility.Awaitility.await;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** A judgment goes from HTTP through the real Kafka broker into PostgreSQL, once. */
@QuarkusTest
class PreferencePathTest {

    @Test
    void aJudgmentPostedTwiceIsStoredOnceWithItsAnnotator() {
        String annotator = Api.newAnnotator();
        long comparison = Api.newComparison("What is 17 + 25?", "42", "43");
        String eventId = UUID.randomUUID().toString();
        for (int i = 0; i < 2; i++) {
            Api.asAnnotator(annotator).contentType(ContentType.JSON)
                    .body(Map.of("eventId", eventId, "comparisonId", comparison, "choice", "A",
                            "rationale", "42 is right", "timeSpentMs", 5300))
                    .post("/api/preferences").then().statusCode(202).body("eventId", equalTo(eventId));
        }
        await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(comparison) >= 1);
        // a later judgment on the same comparison is stored after the duplicate, so once it is
        // there the duplicate has had its chance to be (wrongly) stored too
        Api.judge(Api.asAnnotator(Api.newAnnotator()), comparison, "B");
        await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(comparison) >= 2);
        Api.asAdmin().get("/api/comparisons/" + comparison + "/preferences").then()
                .body("size()", equalTo(2))
                .body("[0].eventId", equalTo(eventId))
                .body("[0].annotator", equalTo(annotator))
                .body("[0].choice", equalTo("A"))
                .body("[0].rationale", equalTo("42 is right"))
                .body("[0].timeSpentMs", equalTo(5300))
                .body("[1].choice", equalTo("B"));
    }

    @Test
    void badJudgmentsAreRefusedByFieldAndNothingReachesKafka() throws Exception {
        long comparison = Api.newComparison("Name a prime.", "7", "8");
        String annotator = Api.newAnnotator();
        long before = Topics.endOffsetSum(PreferenceEvent.TOPIC);
        String id = UUID.randomUUID().toString();
        String bigRationale = "x".repeat(16 * 1024 + 1);
        Object[][] cases = {
                {"{\"eventId\": \"" + id + "\", \"comparisonId\": ", 400, null},
                {Map.of("comparisonId", comparison, "choice", "A"), 422, "eventId"},
                {Map.of("eventId", "not-a-uuid", "comparisonId", comparison, "choice", "A"), 422, "eventId"},
                {Map.of("eventId", id, "comparisonId", 987654321, "choice", "A"), 404, "comparisonId"},
                {Map.of("eventId", id, "comparisonId", comparison, "choice", "C"), 422, "choice"},
                {Map.of("eventId", id, "comparisonId", comparison, "choice", "A", "rationale", bigRationale), 422, "rationale"},
                {Map.of("eventId", id, "comparisonId", comparison, "choice", "A", "rationale", "y".repeat(300 * 1024)), 413, null},
        };
        for (Object[] c : cases) {
            var response = Api.asAnnotator(annotator).contentType(ContentType.JSON).body(c[0])
                    .post("/api/preferences").then()
                    .statusCode((int) c[1])
                    .contentType(startsWith("application/problem+json"))
                    .body("status", equalTo(c[1]));
            if (c[2] != null) response.body("field", equalTo(c[2]));
        }
        assertEquals(before, Topics.endOffsetSum(PreferenceEvent.TOPIC), "no refused judgment may be produced to Kafka");
    }

    @Test
    void anAnnotatorCannotSubmitAsSomeoneElseNorWithoutSigningIn() {
        long comparison = Api.newComparison("Capital of France?", "Paris", "Lyon");
        String annotator = Api.newAnnotator();
        Api.asAnnotator(annotator).contentType(ContentType.JSON)
                .body(Map.of("eventId", UUID.randomUUID().toString(), "comparisonId", comparison, "choice", "A", "annotator", "admin"))
                .post("/api/preferences").then().statusCode(403).body("field", equalTo("annotator"));
        io.restassured.RestAssured.given().contentType(ContentType.JSON)
                .body(Map.of("eventId", UUID.randomUUID().toString(), "comparisonId", comparison, "choice", "A"))
                .post("/api/preferences").then().statusCode(401);
        Api.as(annotator, "wrong-password").get("/api/users/me").then().statusCode(401);
    }
}
