package org.prefloop.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.testing.ServiceProcess;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Serving through an external engine with vLLM's run-time LoRA API, in two processes: one
 * PrefLoop plays the engine (its serve role answers /v1/load_lora_adapter and
 * /v1/unload_lora_adapter, with its own store that knows nothing of the registry), the other is
 * PrefLoop with {@code PREFLOOP_SERVE_BACKEND_URL} pointing at it. Promotion loads the version's
 * adapter there under its name and the alias, a refused load leaves the promotion undone,
 * rollback moves the alias back, a bound retires the least recently used adapter, an engine
 * that forgot an adapter gets it again, a round abandoned by its client is dropped on the engine too,
 * and a gone engine is a 502.
 */
class ServingBackendIT {
    private static final String ENGINE_KEY = "engine-key-0123456789abcdef";
    private static final String APP_KEY = "app-key-0123456789abcdef";
    private final HttpClient http = HttpClient.newHttpClient();
    private final ObjectMapper json = new ObjectMapper();

    @Test
    void promotionLoadsAdaptersOnTheEngineAndV1IsForwardedThere(@TempDir Path data) throws Exception {
        Path base = Path.of("models/demo").toAbsolutePath().normalize();
        Path adapters = Files.createDirectories(data.resolve("adapters"));
        Path tuned = adapters.resolve("tuned");
        Path outside = Files.createDirectories(data.resolve("prefloop")).resolve("outside-the-engines-roots");
        try (LlamaModel model = LlamaModel.load(base)) {
            // a strong random adapter, so that its greedy answers differ from the base's
            LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(4, 32, List.of("q_proj", "v_proj", "o_proj"), base.toString()), 11, true);
            adapter.save(tuned);
            adapter.save(outside);
        }
        String store = "jdbc:h2:file:" + data.resolve("prefloop/store/prefloop") + ";MODE=PostgreSQL;DATABASE_TO_LOWER=TRUE;DEFAULT_NULL_ORDERING=HIGH;WRITE_DELAY=0;AUTO_SERVER=TRUE";
        // the abandoned round below must still be generating on the engine when its client hangs up, whatever the
        // machine's speed: the engine decodes one sequence at a time (max batch 1), so the 100 queued sequences of up to
        // 256 tokens each take thousands of decode steps after the test sees them waiting. (Racing a batch of 8 failed in
        // CI: the engine had finished before the cancellation came; 1,000 queued requests starved its /q/metrics.)
        try (ServiceProcess engine = new ServiceProcess(Files.createDirectories(data.resolve("engine")), Map.of("PREFLOOP_ROLES", "serve",
                "PREFLOOP_API_KEYS", ENGINE_KEY, "PREFLOOP_SERVE_RUNTIME_LORA_UPDATING", "true",
                "PREFLOOP_FILE_ROOTS", "models," + adapters, "PREFLOOP_SERVE_MAX_QUEUE", "150", "PREFLOOP_SERVE_MAX_BATCH", "1")).start();
             ServiceProcess prefloop = new ServiceProcess(data.resolve("prefloop"), Map.of("PREFLOOP_API_KEYS", APP_KEY,
                     "PREFLOOP_SERVE_BACKEND_URL", "http://127.0.0.1:" + engine.port(), "PREFLOOP_SERVE_BACKEND_API_KEY", ENGINE_KEY,
                     "PREFLOOP_SERVE_BACKEND_MAX_ADAPTERS", "1", "QUARKUS_DATASOURCE_JDBC_URL", store)).start()) {
            Map<String, Long> ids = register(store, base, tuned, outside);

            // the engine's own refusals, in vLLM's manner
            assertEquals(401, adapterCall(engine.port(), "load", "{\"lora_name\":\"x\",\"lora_path\":\"" + tuned + "\"}", "no").statusCode());
            HttpResponse<String> notUnderRoots = adapterCall(engine.port(), "load", "{\"lora_name\":\"x\",\"lora_path\":\"" + outside + "\"}", ENGINE_KEY);
            assertEquals(400, notUnderRoots.statusCode(), notUnderRoots.body());
            assertEquals("lora_path", json.readTree(notUnderRoots.body()).at("/error/param").asText());
            assertEquals(404, adapterCall(engine.port(), "unload", "{\"lora_name\":\"never-loaded\"}", ENGINE_KEY).statusCode());
            assertEquals(404, adapterCall(prefloop.port(), "load", "{\"lora_name\":\"x\",\"lora_path\":\"" + tuned + "\"}", APP_KEY).statusCode(),
                    "off unless prefloop.serve.runtime-lora-updating is set");

            // the promoted base: forwarded under the engine's name for it (the base's path)
            String baseAnswer = answer(chat(engine.port(), ENGINE_KEY, "prefloop"));
            assertEquals(baseAnswer, answer(chat(prefloop.port(), APP_KEY, "prefloop")));
            assertEquals(401, chat(prefloop.port(), "not-a-key", "prefloop").statusCode(), "PrefLoop checks its own API keys");

            // promotion: the adapter is loaded on the engine under the version's name and the alias
            HttpResponse<String> promoted = prefloop.postJson("/api/models/" + ids.get("tuned-1") + "/promote", "");
            assertEquals(200, promoted.statusCode(), promoted.body());
            String tunedAnswer = answer(chat(engine.port(), ENGINE_KEY, "tuned-1"));
            assertNotEquals(baseAnswer, tunedAnswer, "the adapter changes the greedy answer");
            assertEquals(tunedAnswer, answer(chat(engine.port(), ENGINE_KEY, "prefloop")), "the alias on the engine");
            assertEquals(tunedAnswer, answer(chat(prefloop.port(), APP_KEY, "prefloop")));
            HttpResponse<String> stream = http.send(chatRequest(prefloop.port(), APP_KEY, "{\"model\":\"prefloop\",\"stream\":true,"
                    + "\"messages\":[{\"role\":\"user\",\"content\":\"reverse: ibjjc\"}],\"temperature\":0,\"max_tokens\":12}"), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, stream.statusCode(), stream.body());
            assertTrue(stream.body().contains("chat.completion.chunk") && stream.body().trim().endsWith("data: [DONE]"), stream.body());

            // /v1/models stays the registry's view, not the engine's
            JsonNode models = json.readTree(http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + prefloop.port() + "/v1/models"))
                    .header("Authorization", "Bearer " + APP_KEY).build(), HttpResponse.BodyHandlers.ofString()).body());
            Set<String> listed = new TreeSet<>();
            models.get("data").forEach(m -> listed.add(m.get("id").asText()));
            assertEquals(new TreeSet<>(List.of("prefloop", "base-demo", "tuned-1", "tuned-2", "outside")), listed);

            // a round of two versions, generated by the engine
            HttpResponse<String> round = prefloop.postJson("/api/rounds", "{\"prompts\":[[{\"role\":\"user\",\"content\":\"reverse: ibjjc\"}]],"
                    + "\"mode\":\"versions\",\"versions\":[\"base-demo\",\"tuned-1\"],\"max_tokens\":12}");
            assertEquals(201, round.statusCode(), round.body());
            assertEquals(1, json.readTree(round.body()).get("created").asInt(), round.body());

            // a load the engine refuses: 502, and nothing is promoted
            HttpResponse<String> refused = prefloop.postJson("/api/models/" + ids.get("outside") + "/promote", "");
            assertEquals(502, refused.statusCode(), refused.body());
            assertEquals("backend", json.readTree(refused.body()).get("field").asText());
            assertTrue(json.readTree(refused.body()).get("detail").asText().contains("outside"), refused.body());
            assertTrue(json.readTree(prefloop.get("/api/models/" + ids.get("tuned-1")).body()).get("promoted").asBoolean());
            assertEquals(tunedAnswer, answer(chat(prefloop.port(), APP_KEY, "prefloop")));
            assertEquals(tunedAnswer, answer(chat(engine.port(), ENGINE_KEY, "prefloop")));

            // rollback: the alias leaves the engine, the base answers again
            assertEquals(200, prefloop.postJson("/api/models/" + ids.get("base-demo") + "/promote", "").statusCode());
            assertEquals(baseAnswer, answer(chat(engine.port(), ENGINE_KEY, "prefloop")));
            assertEquals(baseAnswer, answer(chat(prefloop.port(), APP_KEY, "prefloop")));

            // at most one version adapter (PREFLOOP_SERVE_BACKEND_MAX_ADAPTERS=1): asking for tuned-2 retires tuned-1
            assertEquals(tunedAnswer, answer(chat(prefloop.port(), APP_KEY, "tuned-2")));
            assertEquals(404, chat(engine.port(), ENGINE_KEY, "tuned-1").statusCode(), "tuned-1 was unloaded from the engine");
            assertEquals(tunedAnswer, answer(chat(prefloop.port(), APP_KEY, "tuned-1")), "and is loaded again when asked for");

            // an engine that forgot an adapter (as after its restart) gets it again, and the request is retried
            assertEquals(200, adapterCall(engine.port(), "unload", "{\"lora_name\":\"tuned-1\"}", ENGINE_KEY).statusCode());
            assertEquals(tunedAnswer, answer(chat(prefloop.port(), APP_KEY, "tuned-1")));

            // unknown names and bad bodies are answered by PrefLoop in OpenAI's shape
            HttpResponse<String> unknown = chat(prefloop.port(), APP_KEY, "no-such-version");
            assertEquals(404, unknown.statusCode(), unknown.body());
            assertEquals("model_not_found", json.readTree(unknown.body()).at("/error/code").asText());
            HttpResponse<String> malformed = http.send(chatRequest(prefloop.port(), APP_KEY, "{\"model\":"), HttpResponse.BodyHandlers.ofString());
            assertEquals(400, malformed.statusCode(), malformed.body());

            // a round abandoned while the engine generates it: the engine drops its sequences
            double cancelled = ServeProxyIT.metric(engine, "prefloop_serve_cancelled_total");
            String prompts = String.join(",", java.util.Collections.nCopies(100, "[{\"role\":\"user\",\"content\":\"reverse: " + "abcdefghijklmnopqrstuvwxyz".repeat(8) + "\"}]"));
            String admin = "Basic " + java.util.Base64.getEncoder().encodeToString(("admin:" + ServiceProcess.ADMIN_PASSWORD).getBytes(java.nio.charset.StandardCharsets.UTF_8));
            double waitingAtHangUp;
            try (java.net.Socket abandoned = ServeProxyIT.open(prefloop.port(), "/api/rounds", admin, "{\"prompts\":[" + prompts + "],\"max_tokens\":256,\"seed\":3}")) {
                long deadline = System.currentTimeMillis() + 30_000;
                do {
                    Thread.sleep(20);
                    waitingAtHangUp = ServeProxyIT.metric(engine, "prefloop_serve_queue");
                } while (waitingAtHangUp < 20 && System.currentTimeMillis() < deadline);
            }
            long hungUp = System.nanoTime();
            ServeProxyIT.awaitIdle(engine);
            assertTrue(ServeProxyIT.metric(engine, "prefloop_serve_cancelled_total") - cancelled >= 1, "the abandoned round's sequences were cancelled "
                    + "on the engine (" + waitingAtHangUp + " waiting there when the client hung up, idle " + (System.nanoTime() - hungUp) / 1_000_000 + " ms later)");
            assertEquals(tunedAnswer, answer(chat(prefloop.port(), APP_KEY, "tuned-1")), "and the engine answers the next request");

            // the engine gone: 502 on /v1 (OpenAI's shape) and on rounds and promotion (problems), nothing promoted
            engine.stop();
            HttpResponse<String> gone = chat(prefloop.port(), APP_KEY, "prefloop");
            assertEquals(502, gone.statusCode(), gone.body());
            assertEquals("upstream_unavailable", json.readTree(gone.body()).at("/error/code").asText());
            HttpResponse<String> noRound = prefloop.postJson("/api/rounds", "{\"prompts\":[[{\"role\":\"user\",\"content\":\"reverse: ibjjc\"}]],\"max_tokens\":4}");
            assertEquals(502, noRound.statusCode(), noRound.body());
            assertEquals(502, prefloop.postJson("/api/models/" + ids.get("tuned-2") + "/promote", "").statusCode());
            assertTrue(json.readTree(prefloop.get("/api/models/" + ids.get("base-demo")).body()).get("promoted").asBoolean());
        }
    }

    /** Registers three trained versions as the worker would (two of the same adapter, one the engine may not read). */
    private static Map<String, Long> register(String store, Path base, Path tuned, Path outside) throws Exception {
        try (Connection c = DriverManager.getConnection(store, "prefloop", "")) {
            long baseId;
            try (ResultSet r = c.createStatement().executeQuery("select id from model_versions where name = 'base-demo'")) {
                assertTrue(r.next(), "the base is registered at start");
                baseId = r.getLong(1);
            }
            List<Object[]> rows = new ArrayList<>(List.of(new Object[]{"tuned-1", tuned}, new Object[]{"tuned-2", tuned}, new Object[]{"outside", outside}));
            Map<String, Long> ids = new java.util.HashMap<>(Map.of("base-demo", baseId));
            for (Object[] row : rows) {
                try (PreparedStatement s = c.prepareStatement("insert into model_versions (name, parent_id, base_model, adapter_path) values (?, ?, ?, ?)",
                        new String[]{"id"})) {
                    s.setString(1, (String) row[0]);
                    s.setLong(2, baseId);
                    s.setString(3, base.toString());
                    s.setString(4, row[1].toString());
                    s.executeUpdate();
                    try (ResultSet keys = s.getGeneratedKeys()) {
                        keys.next();
                        ids.put((String) row[0], keys.getLong(1));
                    }
                }
            }
            return ids;
        }
    }

    private HttpResponse<String> chat(int port, String key, String model) throws Exception {
        return http.send(chatRequest(port, key, "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"reverse: ibjjc\"}],"
                + "\"temperature\":0,\"max_tokens\":12}"), HttpResponse.BodyHandlers.ofString());
    }

    private static HttpRequest chatRequest(int port, String key, String body) {
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
                .header("Authorization", "Bearer " + key).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    private HttpResponse<String> adapterCall(int port, String verb, String body, String key) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/" + verb + "_lora_adapter"))
                .header("Authorization", "Bearer " + key).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private String answer(HttpResponse<String> response) throws Exception {
        assertEquals(200, response.statusCode(), response.body());
        return json.readTree(response.body()).at("/choices/0/message/content").asText();
    }
}
