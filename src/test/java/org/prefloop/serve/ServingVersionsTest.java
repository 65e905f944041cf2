package org.prefloop.serve;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.RestAssured;
import io.restassured.http.ContentType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.Generator;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.TextTokenizer;
import org.prefloop.registry.ModelVersion;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Many versions in one batch through /v1: concurrent requests for two adapter versions and the
 * base, greedy and seeded, share decode steps and each gets what it gets alone.
 */
@QuarkusTest
@TestProfile(TinyModelProfile.class)
class ServingVersionsTest {
    static final String QUESTION = "what is 3+4?";
    static final int TOKENS = 16;

    @BeforeAll
    static void checkpoint() {
        TinyModelProfile.ensureCheckpoint();
    }

    private static String register(Path adapterDir) {
        String name = "mixed-" + System.nanoTime();
        QuarkusTransaction.requiringNew().run(() -> {
            ModelVersion v = new ModelVersion();
            v.name = name;
            v.baseModel = TinyModelProfile.CHECKPOINT.toString();
            v.adapterPath = adapterDir.toString();
            v.persist();
        });
        return name;
    }

    /** The model core's own greedy answer, with an optional adapter on the model. */
    private static String direct(Path adapterDir) {
        Path dir = TinyModelProfile.CHECKPOINT;
        try (LlamaModel model = LlamaModel.load(dir); TextTokenizer tok = TextTokenizer.load(dir)) {
            if (adapterDir != null) model.setProjectionHook(LoraAdapter.load(adapterDir, model).hook());
            String prompt = ChatTemplate.load(dir).render(List.of(new ChatTemplate.ChatMessage("user", QUESTION)), true);
            Generator.GenerationParams p = new Generator.GenerationParams(TOKENS, 0f, 1f, 0, 1f, null, List.of(), null, 0f, 0f, true);
            return new Generator(model, tok).generate(tok.encode(prompt), p).text();
        }
    }

    private static String complete(String model, Double temperature, Long seed) {
        Map<String, Object> body = new HashMap<>(Map.of("model", model, "messages", List.of(Map.of("role", "user", "content", QUESTION)),
                "max_tokens", TOKENS, "ignore_eos", true, "temperature", temperature == null ? 0 : temperature));
        if (seed != null) body.put("seed", seed);
        return RestAssured.given().header("Authorization", "Bearer " + ChatCompletionsTest.KEY).contentType(ContentType.JSON).body(body)
                .post("/v1/chat/completions").then().statusCode(200).extract().jsonPath().getString("choices[0].message.content");
    }

    private static double metric(String name) {
        return org.prefloop.testing.Api.management().get("/q/metrics").asString().lines().filter(l -> l.startsWith(name + " ") || l.startsWith(name + "{"))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).max().orElse(0);
    }

    @Test
    void twoAdapterVersionsAndTheBaseShareDecodeStepsAndEachGetsItsOwnAnswer() throws Exception {
        Path wide = Files.createTempDirectory("prefloop-adapter-wide");
        Path narrow = Files.createTempDirectory("prefloop-adapter-narrow");
        try (LlamaModel model = LlamaModel.load(TinyModelProfile.CHECKPOINT)) {
            LoraAdapter.create(model, LoraAdapter.Config.of(4, 32, List.of("q_proj", "v_proj", "o_proj", "down_proj"), null), 5, true).save(wide);
            LoraAdapter.create(model, LoraAdapter.Config.of(8, 128, List.of("v_proj", "o_proj", "gate_proj", "down_proj"), null), 9, true).save(narrow);
        }
        List<String> names = List.of(register(wide), register(narrow), "base-" + TinyModelProfile.CHECKPOINT.getFileName());
        List<String> expected = List.of(direct(wide), direct(narrow), direct(null));
        assertEquals(3, expected.stream().distinct().count(), "the versions answer differently: " + expected);
        // seeded sampling alone, one per version, before the crowd
        List<String> seededAlone = new ArrayList<>();
        for (String n : names) seededAlone.add(complete(n, 1.0, 42L));

        ExecutorService pool = Executors.newFixedThreadPool(9);
        try {
            List<Future<String>> greedy = new ArrayList<>();
            List<Future<String>> seeded = new ArrayList<>();
            for (int round = 0; round < 2; round++) {
                for (String n : names) {
                    greedy.add(pool.submit(() -> complete(n, null, null)));
                    if (round == 0) seeded.add(pool.submit(() -> complete(n, 1.0, 42L)));
                }
            }
            for (int i = 0; i < greedy.size(); i++) assertEquals(expected.get(i % 3), greedy.get(i).get(), "greedy request " + i + " on " + names.get(i % 3));
            for (int i = 0; i < seeded.size(); i++) assertEquals(seededAlone.get(i), seeded.get(i).get(), "seeded request on " + names.get(i));
        } finally {
            pool.shutdown();
        }
        assertTrue(metric("prefloop_serve_batch_versions_max") >= 2, "decode steps ran rows of different versions together");
    }
}
