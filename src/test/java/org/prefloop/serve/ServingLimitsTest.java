package org.prefloop.serve;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.RestAssured;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import io.restassured.response.ValidatableResponse;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasKey;
import static org.hamcrest.Matchers.nullValue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The limits of /v1 and of the generating /api endpoints, each with its answer: the tiny model's
 * context is 2,048 tokens (one character each), bad bodies are refused naming the parameter, and
 * the service answers normally afterwards.
 */
@QuarkusTest
@TestProfile(TinyModelProfile.class)
class ServingLimitsTest {
    static final int CONTEXT = 2048;

    @BeforeAll
    static void checkpoint() {
        TinyModelProfile.ensureCheckpoint();
    }

    @BeforeEach
    void promoteTheTinyBase() {
        Api.asAdmin().post("/api/models/" + ChatCompletionsTest.tinyBaseId() + "/promote").then().statusCode(200);
    }

    private static ValidatableResponse post(Object body) {
        var spec = RestAssured.given().header("Authorization", "Bearer " + ChatCompletionsTest.KEY).contentType(ContentType.JSON);
        return (body instanceof String s ? spec.body(s) : spec.body(body)).post("/v1/chat/completions").then();
    }

    private static Map<String, Object> chat(String content, Map<String, Object> extra) {
        Map<String, Object> body = new java.util.HashMap<>(Map.of("model", "prefloop", "temperature", 0,
                "messages", List.of(Map.of("role", "user", "content", content))));
        body.putAll(extra);
        return body;
    }

    /** OpenAI's error shape, with the parameter and code named. */
    private static void refused(ValidatableResponse r, String param, String code) {
        r.statusCode(400).contentType(ContentType.JSON)
                .body("error.type", equalTo("invalid_request_error"))
                .body("error", hasKey("message"))
                .body("error.param", param == null ? nullValue() : equalTo(param))
                .body("error.code", equalTo(code));
    }

    private static void stillServes() {
        post(chat("hi", Map.of("max_tokens", 3))).statusCode(200).body("object", equalTo("chat.completion"));
    }

    @Test
    void aPromptPlusMaxTokensOverTheContextIsRefusedWithBothNumbers() {
        String message = post(chat("a".repeat(2000), Map.of("max_tokens", 100))).statusCode(400)
                .body("error.code", equalTo("context_length_exceeded")).body("error.param", equalTo("messages"))
                .extract().path("error.message");
        assertTrue(message.contains("maximum context length is " + CONTEXT + " tokens"), message);
        assertTrue(message.matches("(?s).*requested \\d+ tokens \\(20\\d\\d in the messages, 100 in the completion\\).*"), message);
        // a prompt alone over the context, streaming or not: refused before anything is scheduled
        post(chat("b".repeat(60_000), Map.of("stream", true))).statusCode(400).body("error.code", equalTo("context_length_exceeded"))
                .body("error.message", containsString("60"));
        stillServes();
    }

    @Test
    void withoutMaxTokensTheCompletionMayUseWhatRemainsOfTheContext() {
        // the chat template adds a few tokens around the content; find them, then leave room for exactly 3
        int overhead = post(chat("", Map.of("max_tokens", 1))).statusCode(200).extract().path("usage.prompt_tokens");
        JsonPath r = post(chat("c".repeat(CONTEXT - overhead - 3), Map.of())).statusCode(200).extract().jsonPath();
        assertEquals(CONTEXT - 3, r.getInt("usage.prompt_tokens"));
        assertTrue(r.getInt("usage.completion_tokens") <= 3, "completion " + r.getInt("usage.completion_tokens"));
        if (r.getInt("usage.completion_tokens") == 3) assertEquals("length", r.getString("choices[0].finish_reason"));
    }

    @Test
    void badBodiesAreRefusedNamingTheParameter() {
        refused(post("{\"model\": \"prefloop\", \"messages\": ["), null, "invalid_json");
        refused(post("[1, 2]"), null, "invalid_json");
        refused(post(""), null, "invalid_json");
        refused(post(Map.of("model", "prefloop")), "messages", "missing_required_parameter");
        refused(post(Map.of("messages", "hello")), "messages", "invalid_type");
        refused(post(Map.of("messages", List.of(Map.of("content", "no role")))), "messages[0].role", "missing_required_parameter");
        refused(post(Map.of("messages", List.of(Map.of("role", "wizard", "content", "x")))), "messages[0].role", "invalid_value");
        refused(post(Map.of("messages", List.of(Map.of("role", "user", "content", 5)))), "messages[0].content", "invalid_type");
        refused(post(Map.of("messages", List.of(Map.of("role", "user", "content",
                List.of(Map.of("type", "image_url", "image_url", Map.of("url", "x"))))))), "messages[0].content[0].type", "unsupported_parameter");
        refused(post(chat("x", Map.of("temperature", "hot"))), "temperature", "invalid_type");
        refused(post(chat("x", Map.of("temperature", 1e9))), "temperature", "invalid_value");
        refused(post(chat("x", Map.of("max_tokens", -1))), "max_tokens", "invalid_value");
        refused(post(chat("x", Map.of("max_tokens", 2.5))), "max_tokens", "invalid_type");
        refused(post(chat("x", Map.of("top_p", 0))), "top_p", "invalid_value");
        refused(post(chat("x", Map.of("stop", List.of(1, 2)))), "stop", "invalid_type");
        refused(post(chat("x", Map.of("seed", "s"))), "seed", "invalid_type");
        refused(post(chat("x", Map.of("stream", "yes"))), "stream", "invalid_type");
        refused(post(chat("x", Map.of("tools", List.of(Map.of("type", "function", "function", Map.of("name", "f")))))), "tools", "unsupported_parameter");
        refused(post(chat("x", Map.of("tool_choice", "auto"))), "tool_choice", "unsupported_parameter");
        refused(post(chat("x", Map.of("n", 0))), "n", "invalid_value");
        refused(post(chat("x", Map.of("logprobs", "yes"))), "logprobs", "invalid_type");
        refused(post(chat("x", Map.of("response_format", Map.of("type", "json_object")))), "response_format", "unsupported_parameter");
        refused(post(chat("x", Map.of("frobnicate", 1))), "frobnicate", "unknown_parameter");
        stillServes();
    }

    @Test
    void parametersAtTheirDefaultsAndOpenAisBookkeepingAreAccepted() {
        post(chat("x", Map.of("max_tokens", 2, "n", 1, "logprobs", false, "tools", List.of(), "user", "u1", "store", false,
                "response_format", Map.of("type", "text"), "frequency_penalty", 0.5, "presence_penalty", 0.5, "top_k", 5)))
                .statusCode(200);
        post(Map.of("messages", List.of(Map.of("role", "developer", "content", "be brief"), Map.of("role", "assistant"),
                Map.of("role", "user", "content", List.of(Map.of("type", "text", "text", "hi")))), "max_tokens", 2)).statusCode(200);
    }

    @Test
    void roundsAndEvaluationsCheckTheContextAndTheirNumbers() {
        List<List<Map<String, String>>> longPrompt = List.of(List.of(Map.of("role", "user", "content", "d".repeat(2100))));
        Api.asAdmin().contentType(ContentType.JSON).body(Map.of("prompts", longPrompt, "max_tokens", 8)).post("/api/rounds").then()
                .statusCode(400).contentType("application/problem+json").body("field", equalTo("prompts"))
                .body("detail", containsString("context_length_exceeded")).body("detail", containsString(String.valueOf(CONTEXT)));
        List<List<Map<String, String>>> shortPrompt = List.of(List.of(Map.of("role", "user", "content", "hi")));
        for (Map<String, Object> bad : List.<Map<String, Object>>of(Map.of("max_tokens", -1), Map.of("max_tokens", "many"),
                Map.of("temperature", 1e9), Map.of("seed", 1.5))) {
            String field = bad.keySet().iterator().next();
            Map<String, Object> body = new java.util.HashMap<>(bad);
            body.put("prompts", shortPrompt);
            Api.asAdmin().contentType(ContentType.JSON).body(body).post("/api/rounds").then()
                    .statusCode(400).contentType("application/problem+json").body("field", equalTo(field));
        }
        String heldout = Path.of("preference-data/synthetic/heldout.jsonl").toAbsolutePath().toString();
        Api.asAdmin().contentType(ContentType.JSON).body(Map.of("file", heldout, "max_tokens", -1)).post("/api/evaluations").then()
                .statusCode(400).contentType("application/problem+json").body("field", equalTo("max_tokens"));
        Api.asAdmin().contentType(ContentType.JSON).body(Map.of("file", heldout, "max_tokens", CONTEXT)).post("/api/evaluations").then()
                .statusCode(400).body("detail", containsString("context_length_exceeded"));
        stillServes();
    }
}
