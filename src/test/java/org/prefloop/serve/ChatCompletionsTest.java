package org.prefloop.serve;

import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.LogProb;
import dev.langchain4j.model.openai.OpenAiChatResponseMetadata;
import dev.langchain4j.model.openai.OpenAiLanguageModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import dev.langchain4j.model.openai.internal.OpenAiClient;
import dev.langchain4j.model.openai.internal.chat.ChatCompletionResponse;
import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.RestAssured;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import org.junit.jupiter.api.Test;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.Generator;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.TextTokenizer;
import org.prefloop.testing.Api;
import org.prefloop.registry.ModelVersion;

import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** /v1/chat/completions on a tiny checkpoint: what the model core computes, in OpenAI's shapes, to a client we did not write. */
@QuarkusTest
@TestProfile(TinyModelProfile.class)
class ChatCompletionsTest {
    static final String KEY = "seeded-test-key-0123456789";
    static final String QUESTION = "what is 2+2?";

    @TestHTTPResource("/v1")
    URL v1;

    @org.junit.jupiter.api.BeforeAll
    static void checkpoint() {
        TinyModelProfile.ensureCheckpoint();
    }

    /** The tiny base's version, as PREFLOOP_MODEL registered it. */
    static long tinyBaseId() {
        return QuarkusTransaction.requiringNew().call(() -> ModelVersion.<ModelVersion>find("baseModel = ?1 and adapterPath is null",
                TinyModelProfile.CHECKPOINT.toString()).firstResult().id);
    }

    /** Other suites share the store and may have promoted their own versions: serve the tiny base. */
    @org.junit.jupiter.api.BeforeEach
    void promoteTheTinyBase() {
        Api.asAdmin().post("/api/models/" + tinyBaseId() + "/promote").then().statusCode(200);
    }

    /** What the model core itself generates greedily for the question, with an optional adapter. */
    private static String direct(LoraAdapter.Config adapterConfig, Path adapterDir, int maxTokens) {
        Path dir = TinyModelProfile.CHECKPOINT;
        try (LlamaModel model = LlamaModel.load(dir); TextTokenizer tok = TextTokenizer.load(dir)) {
            if (adapterDir != null) model.setProjectionHook(LoraAdapter.load(adapterDir, model).hook());
            String prompt = ChatTemplate.load(dir).render(List.of(new ChatTemplate.ChatMessage("user", QUESTION)), true);
            return new Generator(model, tok).generate(tok.encode(prompt), Generator.GenerationParams.greedy(maxTokens)).text();
        }
    }

    private static JsonPath complete(String model, boolean stream) {
        return RestAssured.given().header("Authorization", "Bearer " + KEY).contentType(ContentType.JSON)
                .body(Map.of("model", model, "messages", List.of(Map.of("role", "user", "content", QUESTION)),
                        "temperature", 0, "max_tokens", 12, "stream", stream))
                .post("/v1/chat/completions").then().statusCode(200).extract().jsonPath();
    }

    @Test
    void greedyAnswersAreTheModelCoresAnswersWithRealUsageCounts() {
        String expected = direct(null, null, 12);
        JsonPath r = complete("prefloop", false);
        assertEquals("chat.completion", r.getString("object"));
        assertEquals(expected, r.getString("choices[0].message.content"));
        assertEquals("assistant", r.getString("choices[0].message.role"));
        assertTrue(List.of("stop", "length").contains(r.getString("choices[0].finish_reason")));
        assertTrue(r.getInt("usage.prompt_tokens") > QUESTION.length(), "the chat template's tokens count too");
        assertEquals(r.getInt("usage.prompt_tokens") + r.getInt("usage.completion_tokens"), r.getInt("usage.total_tokens"));
    }

    @Test
    void streamingSendsOpenAiChunksThatAddUpToTheAnswer() {
        String expected = direct(null, null, 12);
        String body = RestAssured.given().header("Authorization", "Bearer " + KEY).contentType(ContentType.JSON)
                .body(Map.of("model", "prefloop", "messages", List.of(Map.of("role", "user", "content", QUESTION)),
                        "temperature", 0, "max_tokens", 12, "stream", true))
                .post("/v1/chat/completions").then().statusCode(200).contentType(org.hamcrest.Matchers.startsWith("text/event-stream"))
                .extract().asString();
        StringBuilder text = new StringBuilder();
        List<String> events = body.lines().filter(l -> l.startsWith("data: ")).map(l -> l.substring(6)).toList();
        assertEquals("[DONE]", events.get(events.size() - 1));
        for (String e : events.subList(0, events.size() - 1)) {
            JsonPath chunk = JsonPath.from(e);
            assertEquals("chat.completion.chunk", chunk.getString("object"));
            String piece = chunk.getString("choices[0].delta.content");
            if (piece != null) text.append(piece);
        }
        assertEquals(expected, text.toString());
    }

    @Test
    void concurrentRequestsShareBatchesAndAllGetTheirAnswer() throws Exception {
        String expected = direct(null, null, 12);
        ExecutorService pool = Executors.newFixedThreadPool(6);
        List<Future<String>> answers = new ArrayList<>();
        for (int i = 0; i < 6; i++) answers.add(pool.submit(() -> complete("prefloop", false).getString("choices[0].message.content")));
        for (Future<String> a : answers) assertEquals(expected, a.get(60, TimeUnit.SECONDS));
        pool.shutdown();
        String metrics = org.prefloop.testing.Api.management().get("/q/metrics").asString();
        double max = metrics.lines().filter(l -> l.startsWith("prefloop_serve_batch_size_max"))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).max().orElse(0);
        assertTrue(max > 1, "concurrent requests were batched on the model, largest batch " + max);
    }

    private static String answer(Map<String, Object> settings) {
        Map<String, Object> body = new java.util.HashMap<>(Map.of("model", "prefloop", "max_tokens", 12,
                "messages", List.of(Map.of("role", "user", "content", QUESTION))));
        body.putAll(settings);
        return RestAssured.given().header("Authorization", "Bearer " + KEY).contentType(ContentType.JSON).body(body)
                .post("/v1/chat/completions").then().statusCode(200).extract().path("choices[0].message.content");
    }

    @Test
    void requestsWithDifferentSettingsShareTheBatchAndEachGetsItsOwnAnswer() throws Exception {
        String greedy = direct(null, null, 12);
        List<Map<String, Object>> settings = List.of(
                Map.of("temperature", 0),
                Map.of("temperature", 1.2, "seed", 11, "top_p", 0.9),
                Map.of("temperature", 0, "max_tokens", 5),
                Map.of("temperature", 0.7, "seed", 12, "top_k", 5, "presence_penalty", 0.5),
                Map.of("temperature", 0, "frequency_penalty", 0),
                Map.of("temperature", 1.5, "seed", 13, "repetition_penalty", 1.2));
        List<String> alone = new ArrayList<>();
        for (Map<String, Object> s : settings) alone.add(answer(s));
        assertEquals(greedy, alone.get(0));
        assertTrue(greedy.startsWith(alone.get(2)), "five greedy tokens begin the twelve");
        double before = batchSizeSum();
        ExecutorService pool = Executors.newFixedThreadPool(settings.size());
        List<Future<String>> together = new ArrayList<>();
        for (Map<String, Object> s : settings) together.add(pool.submit(() -> answer(s)));
        for (int i = 0; i < settings.size(); i++) {
            assertEquals(alone.get(i), together.get(i).get(60, TimeUnit.SECONDS), "request " + i + " " + settings.get(i));
        }
        pool.shutdown();
        assertTrue(batchSizeSum() - before > 12 * 1.5, "the requests shared decode steps");
    }

    /** The sum of the batch sizes of all decode steps so far: grows by more than the steps when steps are shared. */
    private static double batchSizeSum() {
        return org.prefloop.testing.Api.management().get("/q/metrics").asString().lines().filter(l -> l.startsWith("prefloop_serve_batch_size_sum"))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).sum();
    }

    @Test
    void promotingATrainedVersionSwitchesServingWithoutARestart() throws Exception {
        Path adapterDir = Files.createTempDirectory("prefloop-adapter");
        LoraAdapter.Config config = LoraAdapter.Config.of(4, 32, List.of("q_proj", "v_proj", "o_proj", "down_proj"), TinyModelProfile.CHECKPOINT.toString());
        try (LlamaModel model = LlamaModel.load(TinyModelProfile.CHECKPOINT)) {
            LoraAdapter.create(model, config, 5, true).save(adapterDir);
        }
        String base = direct(null, null, 12);
        String tuned = direct(config, adapterDir, 12);
        assertNotEquals(base, tuned, "the adapter changes the greedy answer");
        String name = "tuned-" + System.nanoTime();
        long id = QuarkusTransaction.requiringNew().call(() -> {
            ModelVersion v = new ModelVersion();
            v.name = name;
            v.baseModel = TinyModelProfile.CHECKPOINT.toString();
            v.adapterPath = adapterDir.toString();
            v.persist();
            return v.id;
        });
        assertEquals(tuned, complete(name, false).getString("choices[0].message.content"), "a version is served by name");
        Api.asAdmin().post("/api/models/" + id + "/promote").then().statusCode(200);
        assertEquals(tuned, complete("prefloop", false).getString("choices[0].message.content"), "the alias follows the promotion");
        long baseId = tinyBaseId();
        Api.asAdmin().post("/api/models/" + baseId + "/promote").then().statusCode(200);
        assertEquals(base, complete("prefloop", false).getString("choices[0].message.content"), "rollback is a promotion of the earlier version");
        RestAssured.given().header("Authorization", "Bearer " + KEY).contentType(ContentType.JSON)
                .body(Map.of("model", "no-such-version", "messages", List.of(Map.of("role", "user", "content", "hi"))))
                .post("/v1/chat/completions").then().statusCode(404).body("error.message", org.hamcrest.Matchers.containsString("no-such-version"));
    }

    @Test
    void langChain4jsOpenAiClientTalksToTheServiceStreamingAndNot() throws Exception {
        String expected = direct(null, null, 12);
        OpenAiChatModel chat = OpenAiChatModel.builder().baseUrl(v1.toString()).apiKey(KEY).modelName("prefloop")
                .temperature(0.0).maxTokens(12).build();
        ChatResponse answer = chat.chat(dev.langchain4j.data.message.UserMessage.from(QUESTION));
        assertEquals(expected, answer.aiMessage().text());
        assertTrue(answer.tokenUsage().inputTokenCount() > 0);

        OpenAiStreamingChatModel streaming = OpenAiStreamingChatModel.builder().baseUrl(v1.toString()).apiKey(KEY)
                .modelName("prefloop").temperature(0.0).maxTokens(12).build();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        StringBuilder pieces = new StringBuilder();
        streaming.chat(QUESTION, new StreamingChatResponseHandler() {
            @Override
            public void onPartialResponse(String partial) {
                pieces.append(partial);
            }

            @Override
            public void onCompleteResponse(ChatResponse response) {
                done.complete(response);
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        ChatResponse streamed = done.get(60, TimeUnit.SECONDS);
        assertEquals(expected, pieces.toString());
        assertEquals(expected, streamed.aiMessage().text());
    }

    /** What the client exposes beyond one answer: logprobs on its chat model, n on its request, the legacy completions model. */
    @Test
    void langChain4jReadsLogprobsChoicesAndLegacyCompletions() {
        String expected = direct(null, null, 12);
        OpenAiChatModel chat = OpenAiChatModel.builder().baseUrl(v1.toString()).apiKey(KEY).modelName("prefloop")
                .temperature(0.0).maxTokens(12).logprobs(true).topLogprobs(3).build();
        ChatResponse answer = chat.chat(dev.langchain4j.data.message.UserMessage.from(QUESTION));
        assertEquals(expected, answer.aiMessage().text());
        List<LogProb> logProbs = ((OpenAiChatResponseMetadata) answer.metadata()).logProbs();
        assertEquals(answer.tokenUsage().outputTokenCount(), logProbs.size(), "one logprob per generated token");
        StringBuilder joined = new StringBuilder();
        for (LogProb lp : logProbs) {
            joined.append(lp.token());
            assertTrue(lp.logprob() <= 0, "a log-probability: " + lp.logprob());
            assertEquals(3, lp.topLogprobs().size());
            assertEquals(lp.token(), lp.topLogprobs().get(0).token(), "greedy picks the most likely token");
            assertEquals(lp.logprob(), lp.topLogprobs().get(0).logprob(), 1e-6);
        }
        assertEquals(expected, joined.toString(), "the tokens spell the answer");

        OpenAiClient client = OpenAiClient.builder().baseUrl(v1.toString()).apiKey(KEY).build();
        ChatCompletionResponse three = client.chatCompletion(dev.langchain4j.model.openai.internal.chat.ChatCompletionRequest.builder()
                .model("prefloop").addUserMessage(QUESTION).temperature(1.0).seed(7).n(3).maxTokens(12).build()).execute();
        assertEquals(3, three.choices().size());
        assertEquals(List.of(0, 1, 2), three.choices().stream().map(c -> c.index()).toList());
        assertTrue(three.choices().stream().map(c -> c.message().content()).distinct().count() > 1, "three independent samples");

        String prompt = "what is 2+2?";
        OpenAiLanguageModel legacy = OpenAiLanguageModel.builder().baseUrl(v1.toString()).apiKey(KEY).modelName("prefloop").temperature(0.0).build();
        Path dir = TinyModelProfile.CHECKPOINT;
        String plain;
        try (LlamaModel model = LlamaModel.load(dir); TextTokenizer tok = TextTokenizer.load(dir)) {
            plain = new Generator(model, tok).generate(tok.encode(prompt), Generator.GenerationParams.greedy(16)).text();
        }
        assertEquals(plain, legacy.generate(prompt).content(), "/v1/completions continues the plain prompt (16 tokens by default)");
    }
}
