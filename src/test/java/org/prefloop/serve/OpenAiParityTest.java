package org.prefloop.serve;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.RestAssured;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import io.restassured.response.ValidatableResponse;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.Generator;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.TextTokenizer;
import org.prefloop.testing.Api;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasKey;
import static org.hamcrest.Matchers.nullValue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What apps and judges use from the OpenAI API beyond one plain answer: {@code n},
 * {@code logprobs}/{@code top_logprobs}, {@code stream_options.include_usage}, and
 * {@code /v1/completions} with {@code echo} scoring. Every number is checked against the model
 * core run directly on the same tokens: its own log-softmax, its own seeded samples.
 */
@QuarkusTest
@TestProfile(TinyModelProfile.class)
class OpenAiParityTest {
    /** Logprobs cross a batch and JSON as float32; the core's are computed in another order. */
    static final double TOLERANCE = 1e-4;
    static final String TEXT = "what is 2+2? it is 4.";

    @BeforeAll
    static void checkpoint() {
        TinyModelProfile.ensureCheckpoint();
    }

    @BeforeEach
    void promoteTheTinyBase() {
        Api.asAdmin().post("/api/models/" + ChatCompletionsTest.tinyBaseId() + "/promote").then().statusCode(200);
    }

    private static ValidatableResponse post(String path, Object body) {
        var spec = RestAssured.given().header("Authorization", "Bearer " + ChatCompletionsTest.KEY).contentType(ContentType.JSON);
        return (body instanceof String s ? spec.body(s) : spec.body(body)).post(path).then();
    }

    private static Map<String, Object> chat(Map<String, Object> extra) {
        Map<String, Object> body = new HashMap<>(Map.of("model", "prefloop", "max_tokens", 12,
                "messages", List.of(Map.of("role", "user", "content", ChatCompletionsTest.QUESTION))));
        body.putAll(extra);
        return body;
    }

    private static Map<String, Object> completion(Map<String, Object> extra) {
        Map<String, Object> body = new HashMap<>(Map.of("model", "prefloop", "prompt", TEXT));
        body.putAll(extra);
        return body;
    }

    /** The data events of a server-sent event stream, [DONE] last. */
    private static List<String> events(String body) {
        List<String> events = body.lines().filter(l -> l.startsWith("data: ")).map(l -> l.substring(6)).toList();
        assertEquals("[DONE]", events.get(events.size() - 1));
        return events.subList(0, events.size() - 1);
    }

    // ---- the model core, run directly

    /** The chat prompt's ids, as the service renders and tokenizes it. */
    private static long[] chatPrompt() {
        try (TextTokenizer tok = TextTokenizer.load(TinyModelProfile.CHECKPOINT)) {
            return tok.encode(ChatTemplate.load(TinyModelProfile.CHECKPOINT)
                    .render(List.of(new ChatTemplate.ChatMessage("user", ChatCompletionsTest.QUESTION)), true));
        }
    }

    private static long[] encode(String text) {
        try (TextTokenizer tok = TextTokenizer.load(TinyModelProfile.CHECKPOINT)) {
            return tok.encode(text);
        }
    }

    private static String decode(long id) {
        try (TextTokenizer tok = TextTokenizer.load(TinyModelProfile.CHECKPOINT)) {
            return tok.decode(new long[]{id});
        }
    }

    private static List<Generator.Completion> generate(List<long[]> prompts, Generator.GenerationParams params) {
        try (LlamaModel model = LlamaModel.load(TinyModelProfile.CHECKPOINT); TextTokenizer tok = TextTokenizer.load(TinyModelProfile.CHECKPOINT)) {
            return new Generator(model, tok).generate(prompts, params, null);
        }
    }

    /** Row p: the core's log-softmax (DJL's, over the vocabulary) after ids[0..p], i.e. the distribution of token p + 1. */
    private static float[][] coreLogSoftmax(long[] ids) {
        boolean wasGrad = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try (LlamaModel model = LlamaModel.load(TinyModelProfile.CHECKPOINT); NDManager m = model.manager().newSubManager()) {
            NDArray hidden = model.hidden(m.create(new long[][]{ids}), null, null);
            float[] flat = model.logits(hidden).logSoftmax(-1).toFloatArray();
            int vocab = flat.length / ids.length;
            float[][] rows = new float[ids.length][];
            for (int p = 0; p < ids.length; p++) rows[p] = Arrays.copyOfRange(flat, p * vocab, (p + 1) * vocab);
            return rows;
        } finally {
            JniUtils.setGradMode(wasGrad);
        }
    }

    private static long[] concat(long[] a, long[] b) {
        long[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static int[] topIds(float[] row, int k) {
        return IntStream.range(0, row.length).boxed().sorted(Comparator.comparingDouble((Integer i) -> -row[i]).thenComparingInt(i -> i))
                .limit(k).mapToInt(Integer::intValue).toArray();
    }

    // ---- chat

    @Test
    void chatLogprobsAreTheCoresLogSoftmaxForEachPrefix() {
        long[] prompt = chatPrompt();
        Generator.Completion core = generate(List.of(prompt), Generator.GenerationParams.greedy(12)).get(0);
        float[][] lsm = coreLogSoftmax(concat(prompt, core.tokenIds()));
        JsonPath r = post("/v1/chat/completions", chat(Map.of("temperature", 0, "logprobs", true, "top_logprobs", 5)))
                .statusCode(200).extract().jsonPath();
        assertEquals(core.text(), r.getString("choices[0].message.content"));
        List<Map<String, Object>> content = r.getList("choices[0].logprobs.content");
        assertEquals(core.tokenIds().length, content.size(), "one entry per generated token");
        for (int j = 0; j < content.size(); j++) {
            float[] row = lsm[prompt.length - 1 + j];
            long id = core.tokenIds()[j];
            Map<String, Object> entry = content.get(j);
            assertEquals(decode(id), entry.get("token"));
            assertEquals(row[(int) id], ((Number) entry.get("logprob")).doubleValue(), TOLERANCE, "token " + j);
            byte[] bytes = decode(id).getBytes(StandardCharsets.UTF_8);
            assertEquals(IntStream.range(0, bytes.length).mapToObj(i -> bytes[i] & 0xff).toList(), entry.get("bytes"));
            List<Map<String, Object>> top = r.getList("choices[0].logprobs.content[" + j + "].top_logprobs");
            int[] expected = topIds(row, 5);
            assertEquals(5, top.size());
            for (int t = 0; t < 5; t++) {
                assertEquals(decode(expected[t]), top.get(t).get("token"), "alternative " + t + " of token " + j);
                assertEquals(row[expected[t]], ((Number) top.get(t).get("logprob")).doubleValue(), TOLERANCE);
            }
            assertEquals(entry.get("token"), top.get(0).get("token"), "greedy picks the most likely token");
        }
        assertEquals(core.tokenIds().length, r.getInt("usage.completion_tokens"));
    }

    @Test
    void sampledTokensReportTheModelsLogprobsNotTheTemperedOnes() {
        JsonPath r = post("/v1/chat/completions", chat(Map.of("temperature", 1.7, "seed", 5, "logprobs", true)))
                .statusCode(200).extract().jsonPath();
        String text = r.getString("choices[0].message.content");
        long[] prompt = chatPrompt();
        Generator.Completion core = generate(List.of(prompt), new Generator.GenerationParams(12, 1.7f, 1f, 0, 1f, 5L, List.of(), new long[0])).get(0);
        assertEquals(core.text(), text, "the seeded sample is the core's");
        float[][] lsm = coreLogSoftmax(concat(prompt, core.tokenIds()));
        List<Float> logprobs = r.getList("choices[0].logprobs.content.logprob", Float.class);
        for (int j = 0; j < logprobs.size(); j++) {
            assertEquals(lsm[prompt.length - 1 + j][(int) core.tokenIds()[j]], logprobs.get(j), TOLERANCE);
        }
        assertEquals(List.of(), r.getList("choices[0].logprobs.content[0].top_logprobs"), "top_logprobs defaults to 0");
    }

    @Test
    void streamedLogprobsAddUpToTheWholeAnswersAndUsageComesLast() {
        JsonPath whole = post("/v1/chat/completions", chat(Map.of("temperature", 0, "logprobs", true, "top_logprobs", 2, "stop", "4")))
                .statusCode(200).extract().jsonPath();
        String body = post("/v1/chat/completions", chat(Map.of("temperature", 0, "logprobs", true, "top_logprobs", 2, "stop", "4",
                "stream", true, "stream_options", Map.of("include_usage", true)))).statusCode(200).extract().asString();
        List<String> events = events(body);
        StringBuilder text = new StringBuilder();
        List<Object> tokens = new ArrayList<>();
        List<Object> logprobs = new ArrayList<>();
        for (String e : events.subList(0, events.size() - 1)) {
            JsonPath chunk = JsonPath.from(e);
            assertNull(chunk.get("usage"), "only the last chunk has usage");
            String piece = chunk.getString("choices[0].delta.content");
            if (piece != null) text.append(piece);
            if (chunk.get("choices[0].logprobs") != null) {
                tokens.addAll(chunk.getList("choices[0].logprobs.content.token"));
                logprobs.addAll(chunk.getList("choices[0].logprobs.content.logprob"));
            }
        }
        assertEquals(whole.getString("choices[0].message.content"), text.toString());
        assertEquals(whole.getList("choices[0].logprobs.content.token"), tokens);
        assertEquals(whole.getList("choices[0].logprobs.content.logprob"), logprobs);
        JsonPath last = JsonPath.from(events.get(events.size() - 1));
        assertEquals(List.of(), last.getList("choices"));
        assertEquals(whole.getInt("usage.completion_tokens"), last.getInt("usage.completion_tokens"));
        assertEquals(whole.getInt("usage.prompt_tokens"), last.getInt("usage.prompt_tokens"));
    }

    @Test
    void nChoicesAreTheCoresSeededSamplesAndUsageCountsThemAll() {
        Map<String, Object> settings = Map.of("temperature", 1.0, "seed", 7, "n", 3);
        JsonPath r = post("/v1/chat/completions", chat(settings)).statusCode(200).extract().jsonPath();
        List<String> texts = r.getList("choices.message.content");
        assertEquals(List.of(0, 1, 2), r.getList("choices.index"));
        long[] prompt = chatPrompt();
        List<Generator.Completion> core = generate(List.of(prompt, prompt, prompt),
                new Generator.GenerationParams(12, 1.0f, 1f, 0, 1f, 7L, List.of(), new long[0]));
        assertEquals(core.stream().map(Generator.Completion::text).toList(), texts, "choice i is the core's sample i of the seed");
        assertTrue(texts.stream().distinct().count() > 1, "choices are drawn independently: " + texts);
        assertEquals(texts, post("/v1/chat/completions", chat(settings)).statusCode(200).extract().jsonPath().getList("choices.message.content"),
                "the same seed gives the same choices");
        assertEquals(texts.get(0), post("/v1/chat/completions", chat(Map.of("temperature", 1.0, "seed", 7))).statusCode(200)
                .extract().path("choices[0].message.content"), "choice 0 is the n = 1 answer");
        assertEquals(core.stream().mapToInt(c -> c.tokenIds().length).sum(), r.getInt("usage.completion_tokens"));
        assertEquals(prompt.length, r.getInt("usage.prompt_tokens"), "the prompt counts once");

        List<String> unseeded = post("/v1/chat/completions", chat(Map.of("temperature", 1.0, "n", 3))).statusCode(200)
                .extract().jsonPath().getList("choices.message.content");
        assertTrue(unseeded.stream().distinct().count() > 1, "unseeded choices differ too: " + unseeded);
    }

    @Test
    void streamedChoicesCarryTheirIndexAndEachEnds() {
        String body = post("/v1/chat/completions", chat(Map.of("temperature", 1.0, "seed", 7, "n", 3, "stream", true,
                "stream_options", Map.of("include_usage", true)))).statusCode(200).extract().asString();
        JsonPath whole = post("/v1/chat/completions", chat(Map.of("temperature", 1.0, "seed", 7, "n", 3))).statusCode(200).extract().jsonPath();
        StringBuilder[] texts = {new StringBuilder(), new StringBuilder(), new StringBuilder()};
        String[] finish = new String[3];
        List<String> events = events(body);
        for (String e : events.subList(0, events.size() - 1)) {
            JsonPath chunk = JsonPath.from(e);
            int index = chunk.getInt("choices[0].index");
            String piece = chunk.getString("choices[0].delta.content");
            if (piece != null) texts[index].append(piece);
            if (chunk.getString("choices[0].finish_reason") != null) finish[index] = chunk.getString("choices[0].finish_reason");
        }
        for (int i = 0; i < 3; i++) {
            assertEquals(whole.getString("choices[" + i + "].message.content"), texts[i].toString(), "choice " + i);
            assertEquals(whole.getString("choices[" + i + "].finish_reason"), finish[i]);
        }
        assertEquals(whole.getInt("usage.completion_tokens"), JsonPath.from(events.get(events.size() - 1)).getInt("usage.completion_tokens"));
    }

    // ---- /v1/completions

    @Test
    void echoWithoutGenerationScoresAGivenTextAsTheCoreDoes() {
        long[] ids = encode(TEXT);
        float[][] lsm = coreLogSoftmax(ids);
        double expected = 0;
        for (int p = 0; p + 1 < ids.length; p++) expected += lsm[p][(int) ids[p + 1]];
        JsonPath r = post("/v1/completions", completion(Map.of("max_tokens", 0, "echo", true, "logprobs", 1))).statusCode(200)
                .extract().jsonPath();
        assertEquals("text_completion", r.getString("object"));
        assertEquals(TEXT, r.getString("choices[0].text"));
        List<Float> logprobs = r.getList("choices[0].logprobs.token_logprobs", Float.class);
        assertEquals(ids.length, logprobs.size());
        assertNull(logprobs.get(0), "the first token has nothing to be scored on");
        double sum = logprobs.subList(1, logprobs.size()).stream().mapToDouble(Float::doubleValue).sum();
        assertEquals(expected, sum, TOLERANCE * ids.length);
        assertEquals(String.join("", r.getList("choices[0].logprobs.tokens", String.class)), TEXT);
        List<Integer> offsets = r.getList("choices[0].logprobs.text_offset", Integer.class);
        assertEquals(IntStream.range(0, ids.length).boxed().toList(), offsets, "one character per token here");
        assertNull(r.get("choices[0].logprobs.top_logprobs[0]"));
        Map<String, Float> top = r.getMap("choices[0].logprobs.top_logprobs[3]", String.class, Float.class);
        int best = topIds(lsm[2], 1)[0];
        assertEquals(lsm[2][best], top.get(decode(best)), TOLERANCE, "the most likely token is listed");
        assertTrue(top.containsKey(decode(ids[3])), "and the token that is there");
        assertEquals(ids.length, r.getInt("usage.prompt_tokens"));
        assertEquals(0, r.getInt("usage.completion_tokens"));

        // several texts in one request: one choice each, in order; a text as token ids scores the same
        JsonPath two = post("/v1/completions", completion(Map.of("prompt", List.of(TEXT, "it is 5."), "max_tokens", 0, "echo", true,
                "logprobs", 0))).statusCode(200).extract().jsonPath();
        assertEquals(List.of(TEXT, "it is 5."), two.getList("choices.text"));
        JsonPath asIds = post("/v1/completions", completion(Map.of("prompt", Arrays.stream(ids).boxed().toList(), "max_tokens", 0,
                "echo", true, "logprobs", 0))).statusCode(200).extract().jsonPath();
        assertEquals(two.getList("choices[0].logprobs.token_logprobs"), asIds.getList("choices[0].logprobs.token_logprobs"));
    }

    @Test
    void completionsContinueThePlainPromptAsTheCoreDoes() {
        long[] prompt = encode(TEXT);
        Generator.Completion core = generate(List.of(prompt), Generator.GenerationParams.greedy(10)).get(0);
        float[][] lsm = coreLogSoftmax(concat(prompt, core.tokenIds()));
        JsonPath r = post("/v1/completions", completion(Map.of("max_tokens", 10, "temperature", 0, "logprobs", 2))).statusCode(200)
                .extract().jsonPath();
        assertEquals(core.text(), r.getString("choices[0].text"));
        List<Float> logprobs = r.getList("choices[0].logprobs.token_logprobs", Float.class);
        assertEquals(core.tokenIds().length, logprobs.size());
        for (int j = 0; j < logprobs.size(); j++) assertEquals(lsm[prompt.length - 1 + j][(int) core.tokenIds()[j]], logprobs.get(j), TOLERANCE);
        assertEquals(0, r.getInt("choices[0].logprobs.text_offset[0]"), "offsets count from the returned text");

        JsonPath echoed = post("/v1/completions", completion(Map.of("max_tokens", 10, "temperature", 0, "echo", true, "logprobs", 0)))
                .statusCode(200).extract().jsonPath();
        assertEquals(TEXT + core.text(), echoed.getString("choices[0].text"));
        List<Integer> offsets = echoed.getList("choices[0].logprobs.text_offset", Integer.class);
        assertEquals(TEXT.length(), offsets.get(prompt.length), "the first generated token starts after the prompt");

        // the default max_tokens is OpenAI's 16; stop cuts the text; seeded choices are the core's samples
        JsonPath defaults = post("/v1/completions", completion(Map.of("temperature", 0, "ignore_eos", true))).statusCode(200).extract().jsonPath();
        assertEquals(16, defaults.getInt("usage.completion_tokens"));
        if (core.text().length() > 2) {
            String stop = core.text().substring(2, 3);
            String cut = post("/v1/completions", completion(Map.of("max_tokens", 10, "temperature", 0, "stop", stop))).statusCode(200)
                    .extract().path("choices[0].text");
            assertEquals(core.text().substring(0, core.text().indexOf(stop)), cut);
        }
        List<Generator.Completion> samples = generate(List.of(prompt, prompt),
                new Generator.GenerationParams(8, 1.0f, 1f, 0, 1f, 3L, List.of(), new long[0]));
        JsonPath n = post("/v1/completions", completion(Map.of("max_tokens", 8, "temperature", 1.0, "seed", 3, "n", 2))).statusCode(200)
                .extract().jsonPath();
        assertEquals(samples.stream().map(Generator.Completion::text).toList(), n.getList("choices.text"));
    }

    @Test
    void streamedCompletionsAddUpToTheWholeOne() {
        JsonPath whole = post("/v1/completions", completion(Map.of("max_tokens", 10, "temperature", 0, "echo", true, "logprobs", 1)))
                .statusCode(200).extract().jsonPath();
        String body = post("/v1/completions", completion(Map.of("max_tokens", 10, "temperature", 0, "echo", true, "logprobs", 1,
                "stream", true, "stream_options", Map.of("include_usage", true)))).statusCode(200)
                .contentType(org.hamcrest.Matchers.startsWith("text/event-stream")).extract().asString();
        List<String> events = events(body);
        StringBuilder text = new StringBuilder();
        List<Object> logprobs = new ArrayList<>();
        List<Object> offsets = new ArrayList<>();
        String finish = null;
        for (String e : events.subList(0, events.size() - 1)) {
            JsonPath chunk = JsonPath.from(e);
            assertEquals("text_completion", chunk.getString("object"));
            text.append(chunk.getString("choices[0].text"));
            if (chunk.get("choices[0].logprobs") != null) {
                logprobs.addAll(chunk.getList("choices[0].logprobs.token_logprobs"));
                offsets.addAll(chunk.getList("choices[0].logprobs.text_offset"));
            }
            if (chunk.getString("choices[0].finish_reason") != null) finish = chunk.getString("choices[0].finish_reason");
        }
        assertEquals(whole.getString("choices[0].text"), text.toString());
        assertEquals(whole.getList("choices[0].logprobs.token_logprobs"), logprobs);
        assertEquals(whole.getList("choices[0].logprobs.text_offset"), offsets);
        assertEquals(whole.getString("choices[0].finish_reason"), finish);
        JsonPath usage = JsonPath.from(events.get(events.size() - 1));
        assertEquals(List.of(), usage.getList("choices"));
        assertEquals(whole.getInt("usage.total_tokens"), usage.getInt("usage.total_tokens"));
    }

    // ---- refusals

    private static void refused(ValidatableResponse r, String param, String code) {
        r.statusCode(400).contentType(ContentType.JSON)
                .body("error.type", equalTo("invalid_request_error"))
                .body("error", hasKey("message"))
                .body("error.param", param == null ? nullValue() : equalTo(param))
                .body("error.code", equalTo(code));
    }

    @Test
    void badParametersAreRefusedNamingThem() {
        refused(post("/v1/chat/completions", chat(Map.of("n", 0))), "n", "invalid_value");
        refused(post("/v1/chat/completions", chat(Map.of("n", 17))), "n", "invalid_value");
        refused(post("/v1/chat/completions", chat(Map.of("n", 1.5))), "n", "invalid_type");
        refused(post("/v1/chat/completions", chat(Map.of("logprobs", true, "top_logprobs", 21))), "top_logprobs", "invalid_value");
        refused(post("/v1/chat/completions", chat(Map.of("logprobs", true, "top_logprobs", -1))), "top_logprobs", "invalid_value");
        refused(post("/v1/chat/completions", chat(Map.of("top_logprobs", 2))), "top_logprobs", "invalid_value");
        refused(post("/v1/chat/completions", chat(Map.of("stream", true, "stream_options", Map.of("include_usage", "yes")))),
                "stream_options.include_usage", "invalid_type");

        refused(post("/v1/completions", "{\"prompt\": "), null, "invalid_json");
        refused(post("/v1/completions", Map.of("model", "prefloop")), "prompt", "missing_required_parameter");
        refused(post("/v1/completions", completion(Map.of("prompt", 5))), "prompt", "invalid_type");
        refused(post("/v1/completions", completion(Map.of("prompt", ""))), "prompt", "invalid_value");
        refused(post("/v1/completions", completion(Map.of("prompt", List.of("ok", 5)))), "prompt[1]", "invalid_type");
        refused(post("/v1/completions", completion(Map.of("prompt", List.of(1, 2, 99_999)))), "prompt", "invalid_value");
        refused(post("/v1/completions", completion(Map.of("logprobs", true))), "logprobs", "invalid_type");
        refused(post("/v1/completions", completion(Map.of("logprobs", 21))), "logprobs", "invalid_value");
        refused(post("/v1/completions", completion(Map.of("echo", "yes"))), "echo", "invalid_type");
        refused(post("/v1/completions", completion(Map.of("max_tokens", -1))), "max_tokens", "invalid_value");
        refused(post("/v1/completions", completion(Map.of("temperature", 5))), "temperature", "invalid_value");
        refused(post("/v1/completions", completion(Map.of("n", 5, "prompt", List.of("a", "b", "c", "d")))), "n", "invalid_value");
        refused(post("/v1/completions", completion(Map.of("best_of", 3))), "best_of", "unsupported_parameter");
        refused(post("/v1/completions", completion(Map.of("suffix", "end"))), "suffix", "unsupported_parameter");
        refused(post("/v1/completions", completion(Map.of("messages", List.of()))), "messages", "unknown_parameter");
        String message = post("/v1/completions", completion(Map.of("prompt", "a".repeat(2040), "max_tokens", 10))).statusCode(400)
                .body("error.code", equalTo("context_length_exceeded")).body("error.param", equalTo("prompt"))
                .extract().path("error.message");
        assertTrue(message.contains("2048") && message.contains("2050"), message);
        refused(post("/v1/completions", completion(Map.of("prompt", "a".repeat(2049), "max_tokens", 0, "echo", true))),
                "prompt", "context_length_exceeded");
        post("/v1/completions", completion(Map.of("model", "no-such-version"))).statusCode(404).body("error.code", equalTo("model_not_found"));
        RestAssured.given().contentType(ContentType.JSON).body(completion(Map.of())).post("/v1/completions").then().statusCode(401)
                .body("error.code", equalTo("invalid_api_key"));
        assertNotEquals("", post("/v1/completions", completion(Map.of("max_tokens", 3, "temperature", 0, "ignore_eos", true)))
                .statusCode(200).extract().path("choices[0].text"), "the service answers after all of these");
    }
}
