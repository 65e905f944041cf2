package org.prefloop.serve;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.RestAssured;
import io.restassured.specification.RequestSpecification;
import org.junit.jupiter.api.Test;
import org.prefloop.registry.ModelVersion;
import org.prefloop.runs.DemoModelProfile;
import org.prefloop.testing.Api;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.awaitility.Awaitility.await;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Thumbs from apps through real HTTP, Kafka and PostgreSQL: /v1 answers (plain and streamed) are
 * remembered, the feedback call on a completion's id travels the topic {@code feedback} and is
 * stored once with the prompt, the answer and the version that wrote it; a later verdict on the
 * same answer replaces the earlier one; bad calls get OpenAI's error shape naming the parameter.
 */
@QuarkusTest
@TestProfile(DemoModelProfile.class)
class FeedbackTest {
    static final String KEY = "seeded-test-key-0123456789";

    private static RequestSpecification app() {
        return RestAssured.given().header("Authorization", "Bearer " + KEY).contentType("application/json");
    }

    private static Map<String, Object> chat(String word, boolean stream) {
        return Map.of("model", "prefloop", "max_tokens", 8, "stream", stream,
                "messages", List.of(Map.of("role", "user", "content", "reverse: " + word)));
    }

    /** The stored verdict on a completion: [label, prompt, completion, model, source, author], or null. */
    private static Object[] stored(String completionId) {
        return QuarkusTransaction.requiringNew().call(() -> {
            @SuppressWarnings("unchecked")
            List<Object[]> rows = ModelVersion.getEntityManager().createNativeQuery(
                            "select label, prompt, completion, model_name, source, author from thumbs where subject = ?1")
                    .setParameter(1, "completion:" + completionId).getResultList();
            return rows.isEmpty() ? null : rows.get(0);
        });
    }

    /** A word of five letters no earlier run used (the store outlives a run), so its rows are this run's. */
    private static String word() {
        var r = new java.util.Random(System.nanoTime());
        StringBuilder w = new StringBuilder();
        for (int i = 0; i < 5; i++) w.append((char) ('a' + r.nextInt(26)));
        return w.toString();
    }

    @Test
    void anAppsThumbsOnACompletionAreStoredOnceWithItsPromptAnswerAndVersion() {
        String hello = word(), world = word();
        var answer = app().body(chat(hello, false)).post("/v1/chat/completions").then().statusCode(200).extract().jsonPath();
        String id = answer.getString("id");
        String text = answer.getString("choices[0].message.content");
        String model = answer.getString("model");

        app().body(Map.of("completion_id", id, "label", false)).post("/v1/feedback").then().statusCode(202)
                .body("completion_id", equalTo(id)).body("label", equalTo(false));
        await().atMost(Duration.ofSeconds(30)).until(() -> stored(id) != null);
        Object[] row = stored(id);
        assertEquals(false, row[0]);
        assertTrue(((String) row[1]).contains("reverse: " + hello), "the prompt is kept: " + row[1]);
        assertEquals(text, row[2]);
        assertEquals(model, row[3]);
        assertEquals("v1", row[4]);
        assertTrue(((String) row[5]).startsWith("key:"), "the API key's name is the author: " + row[5]);

        // the app changes its mind: the later verdict replaces the earlier one, still one row
        app().body(Map.of("completion_id", id, "label", true)).post("/v1/feedback").then().statusCode(202);
        await().atMost(Duration.ofSeconds(30)).until(() -> Boolean.TRUE.equals(stored(id)[0]));
        long rows = QuarkusTransaction.requiringNew().call(() -> ((Number) ModelVersion.getEntityManager()
                .createNativeQuery("select count(*) from thumbs where completion_id = ?1").setParameter(1, id).getSingleResult()).longValue());
        assertEquals(1, rows);

        // a streamed answer is remembered too
        String events = app().body(chat(world, true)).post("/v1/chat/completions").then().statusCode(200).extract().asString();
        Matcher m = Pattern.compile("\"id\":\"(chatcmpl-[0-9a-f]+)\"").matcher(events);
        assertTrue(m.find(), events);
        String streamed = m.group(1);
        app().body(Map.of("completion_id", streamed, "label", true)).post("/v1/feedback").then().statusCode(202);
        await().atMost(Duration.ofSeconds(30)).until(() -> stored(streamed) != null);
        assertTrue(((String) stored(streamed)[1]).contains("reverse: " + world));

        // frozen into a dataset of kind kto: TRL's unpaired rows, the latest verdict on each answer
        String since = java.time.Instant.now().minusSeconds(600).toString();
        long dataset = Api.asAdmin().contentType("application/json").body(Map.of("name", "thumbs-" + System.nanoTime(), "kind", "kto",
                        "filters", Map.of("from", since, "annotators", List.of((String) stored(id)[5]))))
                .post("/api/datasets").then().statusCode(201).body("kind", equalTo("kto")).extract().jsonPath().getLong("id");
        String export = Api.asAdmin().get("/api/datasets/" + dataset + "/export").then().statusCode(200).extract().asString();
        List<io.restassured.path.json.JsonPath> exported = export.lines().map(io.restassured.path.json.JsonPath::new).toList();
        var first = exported.stream().filter(r -> r.getString("prompt[0].content").equals("reverse: " + hello)).toList();
        assertEquals(1, first.size(), export);
        assertEquals(true, first.get(0).getBoolean("label"));
        assertEquals(text, first.get(0).getString("completion[0].content"));
        assertEquals("assistant", first.get(0).getString("completion[0].role"));
        assertTrue(exported.stream().anyMatch(r -> r.getString("prompt[0].content").equals("reverse: " + world) && r.getBoolean("label")), export);
    }

    @Test
    void anAnnotatorsThumbsOnOneAnswerOfAComparisonTravelTheSameWay() {
        long comparison = Api.newComparison("reverse: " + word(), "first answer", "second answer");
        String annotator = Api.newAnnotator();
        String event = java.util.UUID.randomUUID().toString();
        Api.asAnnotator(annotator).contentType("application/json").body(Map.of("eventId", event, "comparisonId", comparison, "side", "B", "label", false))
                .post("/api/thumbs").then().statusCode(202);
        // a retry with the same event id stores nothing twice
        Api.asAnnotator(annotator).contentType("application/json").body(Map.of("eventId", event, "comparisonId", comparison, "side", "B", "label", false))
                .post("/api/thumbs").then().statusCode(202);
        String subject = "comparison:" + comparison + ":B:" + annotator;
        await().atMost(Duration.ofSeconds(30)).until(() -> count(subject) == 1);
        Object[] row = QuarkusTransaction.requiringNew().call(() -> (Object[]) ModelVersion.getEntityManager()
                .createNativeQuery("select label, completion, source, author from thumbs where subject = ?1").setParameter(1, subject).getSingleResult());
        assertEquals(false, row[0]);
        assertEquals("second answer", row[1]);
        assertEquals("annotator", row[2]);
        assertEquals(annotator, row[3]);
        Api.asAnnotator(annotator).contentType("application/json").body(Map.of("eventId", java.util.UUID.randomUUID().toString(),
                "comparisonId", comparison, "side", "C", "label", true)).post("/api/thumbs").then().statusCode(422)
                .contentType("application/problem+json").body("detail", containsString("side"));
        Api.asAnnotator(annotator).contentType("application/json").body(Map.of("eventId", java.util.UUID.randomUUID().toString(),
                "comparisonId", 987654321L, "side", "A", "label", true)).post("/api/thumbs").then().statusCode(404);
    }

    private static long count(String subject) {
        return QuarkusTransaction.requiringNew().call(() -> ((Number) ModelVersion.getEntityManager()
                .createNativeQuery("select count(*) from thumbs where subject = ?1").setParameter(1, subject).getSingleResult()).longValue());
    }

    @Test
    void badFeedbackIsRefusedInOpenAisShapeNamingTheParameter() {
        app().body(Map.of("completion_id", "chatcmpl-nothing-like-it", "label", true)).post("/v1/feedback").then().statusCode(404)
                .body("error.param", equalTo("completion_id")).body("error.code", equalTo("completion_not_found"));
        app().body(Map.of("completion_id", "chatcmpl-x", "label", "good")).post("/v1/feedback").then().statusCode(400)
                .body("error.param", equalTo("label"));
        app().body(Map.of("label", true)).post("/v1/feedback").then().statusCode(400)
                .body("error.param", equalTo("completion_id"));
        app().body("{not json").post("/v1/feedback").then().statusCode(400).body("error.message", containsString("JSON"));
        RestAssured.given().contentType("application/json").body(Map.of("completion_id", "chatcmpl-x", "label", true))
                .post("/v1/feedback").then().statusCode(401).body("error.code", equalTo("invalid_api_key"));
    }
}
