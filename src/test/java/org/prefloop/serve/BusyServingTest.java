package org.prefloop.serve;

import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.RestAssured;
import io.restassured.http.ContentType;
import jakarta.inject.Inject;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A service under pressure: a full queue answers 429 with Retry-After, and clients that hang up
 * (streaming or not) give their sequence back, so the next request meets an idle service.
 * Requests here use {@code ignore_eos} with a long {@code max_tokens}: unless cancelled, each
 * would keep the model busy for thousands of steps.
 */
@QuarkusTest
@TestProfile(BusyServingTest.SmallQueue.class)
class BusyServingTest {
    static final int MAX_BATCH = 4;
    static final int MAX_QUEUE = 4;

    public static class SmallQueue extends TinyModelProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            Map<String, String> c = new HashMap<>(super.getConfigOverrides());
            c.put("prefloop.serve.max-batch", String.valueOf(MAX_BATCH));
            c.put("prefloop.serve.max-queue", String.valueOf(MAX_QUEUE));
            return c;
        }
    }

    @TestHTTPResource("/")
    URL base;

    @Inject
    BatchScheduler scheduler;

    @BeforeAll
    static void checkpoint() {
        TinyModelProfile.ensureCheckpoint();
    }

    @BeforeEach
    void promoteTheTinyBase() {
        Api.asAdmin().post("/api/models/" + ChatCompletionsTest.tinyBaseId() + "/promote").then().statusCode(200);
    }

    private static String body(boolean stream, int maxTokens) {
        return "{\"model\":\"prefloop\",\"messages\":[{\"role\":\"user\",\"content\":\"count with me\"}],\"temperature\":0,"
                + "\"ignore_eos\":true,\"max_tokens\":" + maxTokens + ",\"stream\":" + stream + "}";
    }

    /** A raw HTTP/1.1 request whose connection the test closes when it likes: a client that hangs up. */
    private Socket open(String json) throws IOException {
        Socket s = new Socket(base.getHost(), base.getPort());
        s.setSoTimeout(30_000);
        byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
        OutputStream out = s.getOutputStream();
        out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: " + base.getHost() + "\r\nAuthorization: Bearer " + ChatCompletionsTest.KEY
                + "\r\nContent-Type: application/json\r\nContent-Length: " + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.UTF_8));
        out.write(bytes);
        out.flush();
        return s;
    }

    /** Reads the stream until its first generated text: the request is in the batch now. */
    private static void awaitFirstToken(Socket s) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
        String status = in.readLine();
        assertTrue(status.contains(" 200 "), status);
        for (String line; (line = in.readLine()) != null; ) {
            if (line.startsWith("data: ") && line.contains("\"content\"") && !line.contains("\"role\"")) return;
        }
        throw new IOException("the stream ended before its first token");
    }

    private void awaitLoad(java.util.function.Predicate<BatchScheduler.Load> condition) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 10_000;
        while (!condition.test(scheduler.load()) && System.currentTimeMillis() < deadline) Thread.sleep(5);
        assertTrue(condition.test(scheduler.load()), "load " + scheduler.load());
    }

    private void awaitIdle(long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        while (System.currentTimeMillis() < deadline) {
            if (scheduler.load().equals(new BatchScheduler.Load(0, 0))) return;
            Thread.sleep(20);
        }
        throw new AssertionError("the service is still busy: " + scheduler.load());
    }

    private static void answersNormally() {
        RestAssured.given().header("Authorization", "Bearer " + ChatCompletionsTest.KEY).contentType(ContentType.JSON)
                .body(body(false, 4)).post("/v1/chat/completions").then().statusCode(200)
                .body("usage.completion_tokens", equalTo(4));
    }

    @Test
    void aFullQueueAnswers429WithRetryAfterAndTheServiceRecovers() throws Exception {
        List<Socket> held = new ArrayList<>();
        try {
            for (int i = 0; i < MAX_BATCH; i++) held.add(open(body(true, 2000)));
            awaitLoad(l -> l.running() == MAX_BATCH);
            for (int i = 0; i < MAX_QUEUE; i++) held.add(open(body(true, 2000)));
            awaitLoad(l -> l.waiting() == MAX_QUEUE);
            var refused = RestAssured.given().header("Authorization", "Bearer " + ChatCompletionsTest.KEY).contentType(ContentType.JSON)
                    .body(body(false, 4)).post("/v1/chat/completions").then().statusCode(429)
                    .body("error.code", equalTo("queue_full")).extract();
            assertTrue(Integer.parseInt(refused.header("Retry-After")) >= 1);
        } finally {
            for (Socket s : held) s.close();
        }
        awaitIdle(5_000);
        answersNormally();
    }

    @Test
    void fiftyDroppedStreamsLeaveAnIdleService() throws Exception {
        long cancelledBefore = scheduler.cancelledCount();
        long generatedBefore = scheduler.generatedCount();
        for (int i = 0; i < 50; i++) {
            try (Socket s = open(body(true, 2000))) {
                awaitFirstToken(s);
            } // hung up at the first token
        }
        awaitIdle(5_000);
        assertEquals(50, scheduler.cancelledCount() - cancelledBefore, "every dropped stream was cancelled");
        long generated = scheduler.generatedCount() - generatedBefore;
        assertTrue(generated < 50 * 100, "the dropped streams generated " + generated + " tokens, not 50 x 2000");
        answersNormally();
    }

    @Test
    void aNonStreamingClientThatHangsUpIsCancelledToo() throws Exception {
        long cancelledBefore = scheduler.cancelledCount();
        List<Socket> held = new ArrayList<>();
        for (int i = 0; i < MAX_BATCH + 2; i++) {
            held.add(open(body(false, 2000)));
            int n = i + 1;
            awaitLoad(l -> l.running() + l.waiting() == n);
        }
        for (Socket s : held) s.close();
        awaitIdle(5_000);
        assertEquals(MAX_BATCH + 2, scheduler.cancelledCount() - cancelledBefore, "running and waiting requests were cancelled");
        answersNormally();
    }

    /** n choices are n sequences: queued all or none, and a client that hangs up cancels every one of them. */
    @Test
    void requestsThatArriveDuringADecodeStepArePrefilledInsideItAndAnswerAsAlone() throws Exception {
        awaitIdle(5_000);
        String alone = RestAssured.given().header("Authorization", "Bearer " + ChatCompletionsTest.KEY).contentType(ContentType.JSON)
                .body(body(false, 6)).post("/v1/chat/completions").then().statusCode(200).extract().path("choices[0].message.content");
        long before = scheduler.admittedInsideStepsCount();
        try (Socket s = open(body(true, 2000))) { // a stream that keeps the model stepping
            awaitFirstToken(s);
            // an arrival lands inside a step most of the time; forty in a row that all missed would mean none is admitted there
            for (int i = 0; i < 40 && scheduler.admittedInsideStepsCount() == before; i++) {
                RestAssured.given().header("Authorization", "Bearer " + ChatCompletionsTest.KEY).contentType(ContentType.JSON)
                        .body(body(false, 6)).post("/v1/chat/completions").then().statusCode(200)
                        .body("choices[0].message.content", equalTo(alone));
            }
        }
        assertTrue(scheduler.admittedInsideStepsCount() > before, "a request was prefilled between two layers of a step");
        awaitIdle(5_000);
        answersNormally();
    }

    @Test
    void aRequestsChoicesAreQueuedTogetherOrNotAtAllAndCancelledTogether() throws Exception {
        long cancelledBefore = scheduler.cancelledCount();
        List<Socket> held = new ArrayList<>();
        try {
            for (int i = 0; i < MAX_BATCH; i++) held.add(open(body(true, 2000)));
            awaitLoad(l -> l.running() == MAX_BATCH);
            RestAssured.given().header("Authorization", "Bearer " + ChatCompletionsTest.KEY).contentType(ContentType.JSON)
                    .body(body(false, 4).replaceFirst("\\}$", ",\"n\":" + (MAX_QUEUE + 1) + "}")).post("/v1/chat/completions").then()
                    .statusCode(429).body("error.code", equalTo("queue_full"));
            awaitLoad(l -> l.waiting() == 0); // the choices that found room left the queue unrun
            assertEquals(MAX_QUEUE, scheduler.cancelledCount() - cancelledBefore);
        } finally {
            for (Socket s : held) s.close();
        }
        awaitIdle(5_000);
        long before = scheduler.cancelledCount();
        try (Socket s = open(body(true, 2000).replaceFirst("\\}$", ",\"n\":3}"))) {
            awaitFirstToken(s);
        }
        awaitIdle(5_000);
        assertEquals(3, scheduler.cancelledCount() - before, "all three choices of the dropped stream were cancelled");
        answersNormally();
    }
}
