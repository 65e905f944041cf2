package org.prefloop.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.testing.ServiceProcess;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Kubernetes shape in two processes: a web-only service (what the load balancer reaches)
 * forwards /v1 to a service playing the serve role, streaming included, for API keys and for
 * the console's signed-in admin, and the /api endpoints that generate (rounds, evaluations),
 * and says 502 when serving is gone.
 */
class ServeProxyIT {
    private final HttpClient http = HttpClient.newHttpClient();
    private final ObjectMapper json = new ObjectMapper();

    @Test
    void aWebOnlyProcessForwardsV1ToTheServeRole(@TempDir Path data) throws Exception {
        Path serveData = Files.createDirectories(data.resolve("serve"));
        Path webData = Files.createDirectories(data.resolve("web"));
        String body = "{\"model\":\"prefloop\",\"messages\":[{\"role\":\"user\",\"content\":\"reverse: ibjjc\"}],\"temperature\":0,\"max_tokens\":12}";
        String sessionKey = "a-session-key-both-roles-share-0123456789";
        // one store for both roles, as the Deployments share PostgreSQL in Kubernetes: sessions live there
        String store = "jdbc:h2:file:" + data.resolve("store/prefloop") + ";MODE=PostgreSQL;DATABASE_TO_LOWER=TRUE;DEFAULT_NULL_ORDERING=HIGH;WRITE_DELAY=0;AUTO_SERVER=TRUE";
        try (ServiceProcess serve = new ServiceProcess(serveData, Map.of("PREFLOOP_API_KEYS", "proxy-test-key-0123456789",
                "PREFLOOP_SESSION_KEY", sessionKey, "PREFLOOP_SECURE_COOKIE", "false", "QUARKUS_DATASOURCE_JDBC_URL", store)).start();
             ServiceProcess web = new ServiceProcess(webData, Map.of("PREFLOOP_ROLES", "web", "PREFLOOP_SESSION_KEY", sessionKey,
                     "PREFLOOP_SECURE_COOKIE", "false", "PREFLOOP_SERVE_URL", "http://127.0.0.1:" + serve.port(),
                     "QUARKUS_DATASOURCE_JDBC_URL", store)).start()) {
            HttpResponse<String> direct = post(serve.port(), body, "proxy-test-key-0123456789");
            HttpResponse<String> proxied = post(web.port(), body, "proxy-test-key-0123456789");
            assertEquals(200, direct.statusCode(), direct.body());
            assertEquals(200, proxied.statusCode(), proxied.body());
            assertEquals(content(direct), content(proxied), "the same greedy answer through the web role");

            HttpResponse<String> stream = post(web.port(), body.replace("}]", "}],\"stream\":true"), "proxy-test-key-0123456789");
            assertEquals(200, stream.statusCode());
            assertTrue(stream.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
            assertTrue(stream.body().contains("chat.completion.chunk") && stream.body().trim().endsWith("data: [DONE]"), stream.body());

            // the console's playground: an admin signed in on the web role, no API key
            String[] session = signIn(web.port());
            HttpResponse<String> playground = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + web.port() + "/v1/chat/completions"))
                    .header("Cookie", "prefloop_session=" + session[0]).header("X-CSRF-Token", session[1])
                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, playground.statusCode(), playground.body());
            assertEquals(content(direct), content(playground));

            // generation for the console's /api runs on the serve role too: the next round, and a held-out evaluation
            String round = "{\"prompts\":[[{\"role\":\"user\",\"content\":\"reverse: ibjjc\"}],[{\"role\":\"user\",\"content\":\"reverse: fahba\"}]],"
                    + "\"mode\":\"samples\",\"max_tokens\":8,\"seed\":5}";
            HttpResponse<String> made = web.postJson("/api/rounds", round);
            assertEquals(201, made.statusCode(), made.body());
            JsonNode madeTree = json.readTree(made.body());
            assertEquals(2, madeTree.get("created").asInt() + madeTree.get("identicalSkipped").asInt(), made.body());
            Path heldout = Files.writeString(serveData.resolve("heldout.jsonl"),
                    "{\"prompt\":[{\"role\":\"user\",\"content\":\"reverse: ibjjc\"}],\"answer\":\"cjjbi\"}\n"
                            + "{\"prompt\":[{\"role\":\"user\",\"content\":\"reverse: fahba\"}],\"answer\":\"abhaf\"}\n");
            String evaluation = "{\"file\":\"" + heldout + "\",\"max_tokens\":8}";
            HttpResponse<String> evaluatedThroughWeb = web.postJson("/api/evaluations", evaluation);
            HttpResponse<String> evaluatedOnServe = serve.postJson("/api/evaluations", evaluation);
            assertEquals(200, evaluatedThroughWeb.statusCode(), evaluatedThroughWeb.body());
            // each evaluation is kept under its own id (the promotion gate reads them); all else is the same
            com.fasterxml.jackson.databind.node.ObjectNode onServe = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(evaluatedOnServe.body());
            com.fasterxml.jackson.databind.node.ObjectNode throughWeb = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(evaluatedThroughWeb.body());
            assertTrue(onServe.remove("id").asLong() != throughWeb.remove("id").asLong(), "two evaluations kept");
            assertEquals(onServe, throughWeb, "the file lies on the serve role's disk and the model answers there");
            assertEquals(2, json.readTree(evaluatedThroughWeb.body()).get("examples").asInt());
            HttpResponse<String> badEvaluation = web.postJson("/api/evaluations", "{}");
            assertEquals(422, badEvaluation.statusCode(), badEvaluation.body());
            assertEquals("file", json.readTree(badEvaluation.body()).get("field").asText(), "the serve role's problem comes through");

            HttpResponse<String> refused = post(web.port(), body, "not-a-key");
            assertEquals(401, refused.statusCode());
            assertEquals("invalid_api_key", json.readTree(refused.body()).at("/error/code").asText());

            // clients of the web role that hang up free their sequences on the serve role, as its own clients do
            try {
                dropsThroughTheWebRoleFreeTheServeRole(serve, web, body);
            } catch (AssertionError e) { // the temporary directory goes: keep both roles' logs for a look
                Files.copy(serveData.resolve("service-1.log"), Path.of("target/serve-proxy-it-serve.log"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                Files.copy(webData.resolve("service-1.log"), Path.of("target/serve-proxy-it-web.log"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                throw e;
            }

            serve.stop();
            HttpResponse<String> gone = post(web.port(), body, "proxy-test-key-0123456789");
            assertEquals(502, gone.statusCode());
            assertEquals("upstream_unavailable", json.readTree(gone.body()).at("/error/code").asText());
            HttpResponse<String> noRound = web.postJson("/api/rounds", round);
            assertEquals(502, noRound.statusCode(), noRound.body());
            assertEquals("application/problem+json", noRound.headers().firstValue("Content-Type").orElse(""));
        }
    }

    /**
     * 20 streams dropped at their first token, then non-streaming requests dropped while they run
     * or wait, then a round of 1,000 prompts abandoned once it runs, all through the web role:
     * the serve role cancels every one (its counter), runs far fewer decode steps than the
     * requests asked for (each /v1 request wants 2,000 tokens and ignores EOS, so uncancelled
     * they would keep it busy for minutes), and is idle again at once.
     */
    private void dropsThroughTheWebRoleFreeTheServeRole(ServiceProcess serve, ServiceProcess web, String body) throws Exception {
        String endless = body.replace("\"max_tokens\":12", "\"max_tokens\":2000,\"ignore_eos\":true");
        double cancelled = metric(serve, "prefloop_serve_cancelled_total");
        double rowSteps = metric(serve, "prefloop_serve_batch_size_sum"); // one generated token per row and step
        for (int i = 0; i < 20; i++) {
            try (Socket s = open(web.port(), endless.replace("}]", "}],\"stream\":true"))) {
                awaitFirstToken(s);
            } // hung up at the first token
        }
        awaitIdle(serve);
        assertEquals(20, metric(serve, "prefloop_serve_cancelled_total") - cancelled, "every stream dropped at the web role was cancelled");
        double generated = metric(serve, "prefloop_serve_batch_size_sum") - rowSteps;
        assertTrue(generated < 20 * 200, "the dropped streams generated " + generated + " tokens on the serve role, not 20 x 2000");

        cancelled = metric(serve, "prefloop_serve_cancelled_total");
        List<Socket> waiting = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            waiting.add(open(web.port(), endless));
            int n = i + 1;
            awaitLoad(serve, n);
        }
        for (Socket s : waiting) s.close();
        awaitIdle(serve);
        assertEquals(3, metric(serve, "prefloop_serve_cancelled_total") - cancelled, "whole answers waited for at the web role were cancelled too");

        // a round of 1,000 prompts (2,000 sequences) abandoned once it runs: the serve role drops the rest
        cancelled = metric(serve, "prefloop_serve_cancelled_total");
        String prompts = String.join(",", java.util.Collections.nCopies(1000, "[{\"role\":\"user\",\"content\":\"reverse: abcde\"}]"));
        String admin = "Basic " + java.util.Base64.getEncoder().encodeToString(("admin:" + ServiceProcess.ADMIN_PASSWORD).getBytes(StandardCharsets.UTF_8));
        try (Socket round = open(web.port(), "/api/rounds", admin, "{\"prompts\":[" + prompts + "],\"mode\":\"samples\",\"max_tokens\":64,\"seed\":3}")) {
            long deadline = System.currentTimeMillis() + 30_000;
            while (metric(serve, "prefloop_serve_running") == 0 && System.currentTimeMillis() < deadline) Thread.sleep(20);
        }
        awaitIdle(serve);
        assertTrue(metric(serve, "prefloop_serve_cancelled_total") - cancelled >= 1, "the abandoned round's sequences were cancelled");
        assertEquals(200, post(web.port(), body, "proxy-test-key-0123456789").statusCode(), "the next request is answered");
    }

    /** A raw HTTP/1.1 request to the web role whose connection the test closes when it likes: a client that hangs up. */
    private static Socket open(int port, String json) throws Exception {
        return open(port, "/v1/chat/completions", "Bearer proxy-test-key-0123456789", json);
    }

    static Socket open(int port, String path, String authorization, String json) throws Exception {
        Socket s = new Socket("127.0.0.1", port);
        s.setSoTimeout(60_000);
        byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
        OutputStream out = s.getOutputStream();
        out.write(("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + authorization
                + "\r\nContent-Type: application/json\r\nContent-Length: " + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.UTF_8));
        out.write(bytes);
        out.flush();
        return s;
    }

    /** Reads the stream until its first generated text: the request is in the serve role's batch now. */
    private static void awaitFirstToken(Socket s) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
        String status = in.readLine();
        assertTrue(status.contains(" 200 "), status);
        for (String line; (line = in.readLine()) != null; ) {
            if (line.startsWith("data: ") && line.contains("\"content\"") && !line.contains("\"role\"")) return;
        }
        throw new AssertionError("the stream ended before its first token");
    }

    /** The serve role's sequences decoding plus waiting reach {@code n}. */
    private static void awaitLoad(ServiceProcess serve, int n) throws Exception {
        long deadline = System.currentTimeMillis() + 30_000;
        while (System.currentTimeMillis() < deadline) {
            if (metric(serve, "prefloop_serve_running") + metric(serve, "prefloop_serve_queue") == n) return;
            Thread.sleep(20);
        }
        throw new AssertionError("the serve role never had " + n + " sequences");
    }

    /** Nothing decoding or waiting on the serve role within a few seconds. */
    static void awaitIdle(ServiceProcess serve) throws Exception {
        long deadline = System.currentTimeMillis() + 10_000;
        while (System.currentTimeMillis() < deadline) {
            if (metric(serve, "prefloop_serve_running") == 0 && metric(serve, "prefloop_serve_queue") == 0) return;
            Thread.sleep(20);
        }
        throw new AssertionError("the serve role is still busy: running " + metric(serve, "prefloop_serve_running")
                + ", waiting " + metric(serve, "prefloop_serve_queue") + ", cancelled so far " + metric(serve, "prefloop_serve_cancelled_total")
                + ", decode steps " + metric(serve, "prefloop_serve_batch_size_count"));
    }

    /** A metric of the serve role without tags, from Prometheus' text on its management port. */
    static double metric(ServiceProcess process, String name) throws Exception {
        for (String line : process.management("/q/metrics").body().split("\n")) {
            if (line.startsWith(name + " ") || line.startsWith(name + "{")) return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
        }
        throw new AssertionError("no metric " + name);
    }

    private HttpResponse<String> post(int port, String body, String key) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
                .header("Authorization", "Bearer " + key).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Signs in as the admin through the web role's form: the session cookie and the page's CSRF token. */
    private String[] signIn(int port) throws Exception {
        String base = "http://127.0.0.1:" + port;
        HttpResponse<String> form = http.send(HttpRequest.newBuilder(URI.create(base + "/login")).build(), HttpResponse.BodyHandlers.ofString());
        String formToken = between(form.body(), "name=\"csrf\" value=\"", "\"");
        String formCookie = between(form.headers().firstValue("Set-Cookie").orElseThrow(), "prefloop_signin=", ";");
        HttpResponse<String> signedIn = http.send(HttpRequest.newBuilder(URI.create(base + "/login"))
                .header("Cookie", "prefloop_signin=" + formCookie).header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString("username=admin&password=" + ServiceProcess.ADMIN_PASSWORD + "&csrf=" + formToken + "&next="))
                .build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(303, signedIn.statusCode());
        String cookie = signedIn.headers().allValues("Set-Cookie").stream().filter(c -> c.startsWith("prefloop_session="))
                .map(c -> between(c, "prefloop_session=", ";")).findFirst().orElseThrow();
        HttpResponse<String> page = http.send(HttpRequest.newBuilder(URI.create(base + "/console"))
                .header("Cookie", "prefloop_session=" + cookie).build(), HttpResponse.BodyHandlers.ofString());
        return new String[]{cookie, between(page.body(), "name=\"csrf-token\" content=\"", "\"")};
    }

    private static String between(String text, String start, String end) {
        int from = text.indexOf(start) + start.length();
        return text.substring(from, text.indexOf(end, from));
    }

    private String content(HttpResponse<String> response) throws Exception {
        JsonNode tree = json.readTree(response.body());
        return tree.at("/choices/0/message/content").asText();
    }
}
