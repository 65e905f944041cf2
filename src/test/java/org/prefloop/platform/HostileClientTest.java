package org.prefloop.platform;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.RestAssured;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.List;
import java.util.ArrayList;
import java.util.UUID;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.inject.Inject;
import org.prefloop.collect.Choice;
import org.prefloop.collect.PreferenceEvent;
import org.prefloop.testing.Api;
import org.prefloop.testing.Browser;
import static org.awaitility.Awaitility.await;

import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.not;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.prefloop.testing.Api.asAdmin;

/**
 * The probes a hostile client sends (README, "Security"), replayed against the running service:
 * each gets its documented answer, and the service stays healthy after every one.
 */
@QuarkusTest
class HostileClientTest {
    @Inject
    KafkaClients kafka;
    @Inject
    ObjectMapper json;

    static final String SECRET = "TOPSECRET-" + java.util.UUID.randomUUID();
    static final String CWD = Path.of("").toAbsolutePath().toString();

    @AfterEach
    void stillHealthy() {
        org.prefloop.testing.Api.management().get("/q/health/live").then().statusCode(200);
    }

    /** A file outside the roots holding a secret token, and a link to it from inside a root. */
    static Path secretFile() throws Exception {
        Path secret = Files.createTempFile("prefloop-secret", ".jsonl");
        Files.writeString(secret, SECRET + "\n");
        return secret;
    }

    static void refusedWithoutLeak(Response r, String field) {
        r.then().statusCode(422).contentType("application/problem+json").body("field", equalTo(field));
        String body = r.asString();
        assertFalse(body.contains(SECRET), "no file content: " + body);
        assertFalse(body.contains("root:"), "no file content: " + body);
        assertFalse(body.contains(CWD), "no server path: " + body);
    }

    @Test
    void filesOutsideTheRootsAreRefusedWithoutQuotingThem() throws Exception {
        Path secret = secretFile();
        Path link = Path.of("target", "hostile-link-" + System.nanoTime() + ".jsonl");
        Files.createSymbolicLink(link, secret);
        try {
            refusedWithoutLeak(asAdmin().contentType(ContentType.JSON).body(Map.of("file", "/etc/passwd")).post("/api/evaluations"), "file");
            refusedWithoutLeak(asAdmin().contentType(ContentType.JSON).body(Map.of("file", secret.toString())).post("/api/evaluations"), "file");
            refusedWithoutLeak(asAdmin().contentType(ContentType.JSON).body(Map.of("file", link.toString())).post("/api/evaluations"), "file");
            refusedWithoutLeak(asAdmin().contentType(ContentType.JSON).body(Map.of("file", "preference-data/../../../../etc/passwd")).post("/api/evaluations"), "file");
            for (String field : new String[]{"sft.dataset", "sft.replay_dataset", "forgetting_dataset", "dpo.dataset", "dpo.eval_dataset"}) {
                refusedWithoutLeak(run(spec("models/demo", field, secret.toString())), field);
            }
            refusedWithoutLeak(run(spec("/etc", "dpo.dataset", "preference-data/synthetic/dpo.jsonl")), "model_name_or_path");
            refusedWithoutLeak(run(spec("models/../..", "dpo.dataset", "preference-data/synthetic/dpo.jsonl")), "model_name_or_path");
            refusedWithoutLeak(run(spec("models/demo", "sft.dataset", link.toString())), "sft.dataset");
            // the store's files are inside the data directory and still refused
            refusedWithoutLeak(run(spec("models/demo", "dpo.dataset", "target/test-data/db/x.jsonl")), "dpo.dataset");
        } finally {
            Files.deleteIfExists(link);
            Files.deleteIfExists(secret);
        }
    }

    @Test
    void readmesRelativeNamesWorkAndMessagesNameFilesAsWritten() {
        // models/demo resolves (the model is read), then a file that is not JSON Lines fails pre-flight: named as written
        Response r = run(spec("models/demo", "dpo.dataset", "preference-data/README.md"));
        r.then().statusCode(422).body("detail", containsString("preference-data/README.md"));
        assertFalse(r.asString().contains(CWD), r.asString());
        // the evaluation file of README's loop is accepted (this profile serves no model, so the answer is about the model)
        Response e = asAdmin().contentType(ContentType.JSON).body(Map.of("file", "preference-data/synthetic/heldout.jsonl")).post("/api/evaluations");
        assertTrue(!"file".equals(e.jsonPath().getString("field")), e.asString());
    }

    @Test
    void onePersonCastsOneVotePerComparisonAssignedOrNot() throws Exception {
        String annotator = Api.newAnnotator();
        long unassigned = Api.newComparison("stuff the ballot?", "yes", "no");
        UUID first = UUID.randomUUID();
        vote(Api.asAnnotator(annotator), first, unassigned).then().statusCode(202);
        for (int i = 0; i < 4; i++) {
            vote(Api.asAnnotator(annotator), UUID.randomUUID(), unassigned).then().statusCode(409)
                    .contentType("application/problem+json").body("field", equalTo("comparisonId"));
        }
        vote(Api.asAnnotator(annotator), first, unassigned).then().statusCode(202); // a retry of the same event

        // twenty concurrent posts with twenty event ids on an assigned comparison: one passes
        Api.newComparison("race?", "a", "b");
        String racer = Api.newAnnotator();
        long assigned = Api.asAnnotator(racer).get("/api/tasks/next").then().statusCode(200).extract().jsonPath().getLong("comparisonId");
        ExecutorService pool = Executors.newFixedThreadPool(20);
        try {
            List<Future<Integer>> answers = new ArrayList<>();
            CountDownLatch go = new CountDownLatch(1);
            for (int i = 0; i < 20; i++) {
                answers.add(pool.submit(() -> {
                    go.await();
                    return vote(Api.asAnnotator(racer), UUID.randomUUID(), assigned).statusCode();
                }));
            }
            go.countDown();
            List<Integer> codes = new ArrayList<>();
            for (Future<Integer> f : answers) codes.add(f.get(60, TimeUnit.SECONDS));
            assertEquals(1, codes.stream().filter(c -> c == 202).count(), "one 202: " + codes);
            assertEquals(19, codes.stream().filter(c -> c == 409).count(), "the rest 409: " + codes);
        } finally {
            pool.shutdownNow();
        }

        // the store itself refuses a second judgment by the same person that reached the topic another way
        UUID other = UUID.randomUUID();
        kafka.send(PreferenceEvent.TOPIC, String.valueOf(unassigned), json.writeValueAsString(new PreferenceEvent(other, unassigned,
                annotator, Choice.parse("B"), null, null, java.time.Instant.now(), null)));
        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertEquals(List.of(1, 1),
                List.of(storedBy(assigned, racer).size(), storedBy(unassigned, annotator).size()), "stored on the raced and the unassigned comparison"));
        Thread.sleep(1500); // time for the bypassing event to be consumed
        assertEquals(List.of(first.toString()), storedBy(unassigned, annotator), "one vote per person, in the store: the first");
        assertEquals(1, storedBy(assigned, racer).size());
    }

    @Test
    void badInputIsA4xxProblemNeverA500() {
        String annotator = Api.newAnnotator();
        for (String next : new String[]{"/a b", "/a\tb", "/a\"b", "/<script>", "/x\r\nX-Forged: 1", "/x\nINFO forged log line"}) {
            Response r = org.prefloop.testing.Browser.postSignIn(annotator, "password-" + annotator, next);
            assertEquals(303, r.statusCode(), "next " + next + ": " + r.asString());
            assertTrue(r.header("Location").endsWith("/annotate"), "falls back home for " + next + ": " + r.header("Location"));
            assertEquals(null, r.header("X-Forged"));
        }
        RestAssured.given().get("/login?next=" + java.net.URLEncoder.encode("/\"><script>x</script>", StandardCharsets.UTF_8))
                .then().statusCode(200).body(not(containsString("<script>x")));

        asAdmin().contentType(ContentType.JSON).body(Map.of("name", "neg", "filters", Map.of("minVotes", -1))).post("/api/datasets")
                .then().statusCode(422).contentType("application/problem+json").body("field", equalTo("filters.minVotes"));
        asAdmin().contentType(ContentType.JSON).body(Map.of("source", "no-such-source-" + UUID.randomUUID())).post("/api/judges/reverse")
                .then().statusCode(404).contentType("application/problem+json").body("field", equalTo("source"));
        asAdmin().contentType(ContentType.JSON).body(Map.of("comparisonIds", List.of("x"))).post("/api/judges/reverse")
                .then().statusCode(422).body("field", equalTo("comparisonIds"));
        for (String name : new String[]{"../../../tmp/x", "a/b", "..", ".hidden", "x".repeat(101)}) {
            run("name: \"" + name + "\"\nmodel_name_or_path: models/demo\ndpo: {dataset: preference-data/synthetic/dpo.jsonl}\n")
                    .then().statusCode(422).contentType("application/problem+json").body("field", equalTo("name"));
        }
        // errors raised below the resources (a path or query parameter that does not parse) still carry a problem
        Api.asAnnotator(annotator).get("/api/tasks/history?limit=many").then().statusCode(404).contentType("application/problem+json");
        asAdmin().get("/api/runs/abc").then().statusCode(404).contentType("application/problem+json");
        asAdmin().contentType(ContentType.JSON).body("{").post("/api/evaluations").then().statusCode(400).contentType("application/problem+json");
        asAdmin().contentType("text/csv").body("a,b").post("/api/evaluations").then().statusCode(415).contentType("application/problem+json");
        asAdmin().put("/api/runs").then().statusCode(405).contentType("application/problem+json");
    }

    @Test
    void everyApiBodyIsBounded() throws Exception {
        byte[] big = new byte[5 * 1024 * 1024];
        java.util.Arrays.fill(big, (byte) 'a');
        for (String path : new String[]{"/api/runs", "/api/datasets", "/api/evaluations", "/api/rounds", "/api/users", "/api/keys", "/api/judges/reverse"}) {
            asAdmin().contentType(ContentType.JSON).body(big).post(path).then().statusCode(413).contentType("application/problem+json");
        }
        // a body without a length (chunked) is cut off at the limit
        var chunked = java.net.http.HttpClient.newBuilder().version(java.net.http.HttpClient.Version.HTTP_1_1).build().send(java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create(RestAssured.baseURI + ":" + RestAssured.port + "/api/runs"))
                .header("Authorization", "Basic " + java.util.Base64.getEncoder().encodeToString(("admin:" + Api.adminPassword()).getBytes()))
                .header("Content-Type", "application/json")
                .POST(java.net.http.HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(big))).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
        assertEquals(413, chunked.statusCode(), chunked.body());
        assertTrue(chunked.headers().firstValue("Content-Type").orElse("").startsWith("application/problem+json"));
    }

    @Test
    void everyWayInIsThrottledAlike() {
        // the form locks a name: HTTP Basic is refused too, even with the right password
        String a = Api.newAnnotator();
        for (int i = 0; i < 5; i++) assertEquals(401, org.prefloop.testing.Browser.postSignIn(a, "guess-" + i, null).statusCode());
        // a locked name gets 429 with Retry-After over Basic too, so scripts wait instead of retrying
        Response locked = Api.asAnnotator(a).get("/api/users/me");
        assertEquals(429, locked.statusCode(), locked.asString());
        assertTrue(Integer.parseInt(locked.header("Retry-After")) > 0);
        assertTrue(locked.contentType().startsWith("application/problem+json"), locked.contentType());
        // Basic failures lock the form and Basic
        String b = Api.newAnnotator();
        Api.asAnnotator(b).get("/api/users/me").then().statusCode(200);
        for (int i = 0; i < 5; i++) Api.as(b, "guess-" + i).get("/api/users/me").then().statusCode(401);
        Api.asAnnotator(b).get("/api/users/me").then().statusCode(429);
        assertEquals(429, org.prefloop.testing.Browser.postSignIn(b, "password-" + b, null).statusCode());
        // unknown names are refused like known ones (and count against the name as well)
        Api.as("nobody-" + UUID.randomUUID().toString().substring(0, 8), "whatever-password").get("/api/users/me").then().statusCode(401);
        // bcrypt ignores bytes past the 72nd: such passwords are refused when set and when tried
        String longPassword = "p".repeat(73);
        asAdmin().contentType(ContentType.JSON).body(Map.of("username", "long-" + UUID.randomUUID().toString().substring(0, 8),
                "password", longPassword, "role", "annotator")).post("/api/users")
                .then().statusCode(422).body("field", equalTo("password"));
        String c = Api.newAnnotator();
        Api.as(c, "password-" + c + "x".repeat(80)).get("/api/users/me").then().statusCode(401);
        Api.asAnnotator(c).get("/api/users/me").then().statusCode(200);
    }

    @Test
    void sessionsEndAtOnceAndAdminActionsAreAudited() {
        // sign-out ends the session on the server: the same cookie no longer works
        String a = Api.newAnnotator();
        Browser aSession = Browser.signIn(a, "password-" + a);
        aSession.script().get("/api/tasks/stats").then().statusCode(200);
        aSession.script().post("/logout").then().statusCode(204);
        aSession.script().get("/api/tasks/stats").then().statusCode(401);

        // disabling ends sessions and Basic at once; enabling lets Basic in again
        String b = Api.newAnnotator();
        Browser bSession = Browser.signIn(b, "password-" + b);
        Api.asAnnotator(b).get("/api/users/me").then().statusCode(200);
        asAdmin().post("/api/users/" + b + "/disable").then().statusCode(200).body("disabled", equalTo(true));
        bSession.script().get("/api/tasks/stats").then().statusCode(401);
        Api.asAnnotator(b).get("/api/users/me").then().statusCode(401);
        assertEquals(401, Browser.postSignIn(b, "password-" + b, null).statusCode());
        asAdmin().post("/api/users/" + b + "/enable").then().statusCode(200).body("disabled", equalTo(false));
        Api.asAnnotator(b).get("/api/users/me").then().statusCode(200);

        // a role change ends sessions; the new role holds at once
        String c = Api.newAnnotator();
        Browser cSession = Browser.signIn(c, "password-" + c);
        Api.asAnnotator(c).get("/api/users").then().statusCode(403);
        asAdmin().contentType(ContentType.JSON).body(Map.of("role", "admin")).put("/api/users/" + c + "/role").then().statusCode(200);
        cSession.script().get("/api/tasks/stats").then().statusCode(401);
        Api.asAnnotator(c).get("/api/users").then().statusCode(200);
        asAdmin().contentType(ContentType.JSON).body(Map.of("role", "root")).put("/api/users/" + c + "/role").then().statusCode(422);

        // an admin's password reset ends sessions and the old password (even one remembered by the cache)
        Browser cAgain = Browser.signIn(c, "password-" + c);
        asAdmin().contentType(ContentType.JSON).body(Map.of("password", "brand-new-password")).post("/api/users/" + c + "/password").then().statusCode(200);
        cAgain.script().get("/api/tasks/stats").then().statusCode(401);
        Api.asAnnotator(c).get("/api/users/me").then().statusCode(401);
        Api.as(c, "brand-new-password").get("/api/users/me").then().statusCode(200);

        // people change their own password, giving the current one
        String d = Api.newAnnotator();
        Api.asAnnotator(d).contentType(ContentType.JSON).body(Map.of("currentPassword", "nope-nope", "password", "another-password"))
                .post("/api/users/me/password").then().statusCode(422).body("field", equalTo("currentPassword"));
        Api.asAnnotator(d).contentType(ContentType.JSON).body(Map.of("currentPassword", "password-" + d, "password", "another-password"))
                .post("/api/users/me/password").then().statusCode(204);
        Api.asAnnotator(d).get("/api/users/me").then().statusCode(401);
        Api.as(d, "another-password").get("/api/users/me").then().statusCode(200);

        asAdmin().post("/api/users/admin/disable").then().statusCode(409);
        asAdmin().post("/api/users/nobody-here/disable").then().statusCode(404);
        // the audit log: who did what to whom
        List<Map<String, Object>> log = asAdmin().get("/api/audit?limit=50").then().statusCode(200).extract().jsonPath().getList("$");
        for (String[] expected : new String[][]{{"user.disable", b}, {"user.enable", b}, {"user.role", c}, {"user.password-reset", c}, {"user.create", d}}) {
            assertTrue(log.stream().anyMatch(e -> e.get("action").equals(expected[0]) && e.get("target").equals(expected[1])
                    && e.get("actor").equals("admin")), expected[0] + " " + expected[1] + " in " + log);
        }
        // API keys: creating and revoking are admin actions too
        int key = asAdmin().contentType(ContentType.JSON).body(Map.of("name", "audited-app")).post("/api/keys")
                .then().statusCode(201).extract().path("id");
        asAdmin().delete("/api/keys/" + key).then().statusCode(200);
        List<Map<String, Object>> keyLog = asAdmin().get("/api/audit?limit=50").then().statusCode(200).extract().jsonPath().getList("$");
        for (String action : new String[]{"key.create", "key.revoke"}) {
            assertTrue(keyLog.stream().anyMatch(e -> e.get("action").equals(action) && e.get("target").equals("key " + key)), action + " in " + keyLog);
        }
        Api.as(d, "another-password").get("/api/audit").then().statusCode(403);
        asAdmin().get("/api/audit?limit=0").then().statusCode(422);
    }

    @Test
    void theDataDirectoryIsPrivate() throws Exception {
        Path data = Path.of(org.eclipse.microprofile.config.ConfigProvider.getConfig().getValue("prefloop.data-dir", String.class));
        assertEquals("rwx------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(data)));
        // what was there at start is brought to 0700/0600
        Path tree = Files.createTempDirectory("prefloop-perm");
        Files.createDirectories(tree.resolve("db"));
        Files.writeString(tree.resolve("db/store.mv.db"), "hashes");
        java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--");
        Files.setPosixFilePermissions(tree.resolve("db/store.mv.db"), java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        DataDirPermissions.secureTree(tree);
        assertEquals("rwx------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(tree.resolve("db"))));
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(tree.resolve("db/store.mv.db"))));
    }

    static List<String> storedBy(long comparisonId, String annotator) {
        return asAdmin().get("/api/comparisons/" + comparisonId + "/preferences").then().statusCode(200).extract().jsonPath()
                .getList("findAll { it.annotator == '" + annotator + "' }.eventId");
    }

    static Response vote(io.restassured.specification.RequestSpecification who, UUID eventId, long comparisonId) {
        return who.contentType(ContentType.JSON).body(Map.of("eventId", eventId.toString(), "comparisonId", comparisonId, "choice", "A"))
                .post("/api/preferences");
    }

    static String spec(String model, String field, String value) {
        String stage = field.contains(".") ? field.substring(0, field.indexOf('.')) : "dpo";
        String key = field.contains(".") ? field.substring(field.indexOf('.') + 1) : field;
        StringBuilder y = new StringBuilder("name: hostile\nmodel_name_or_path: \"" + model + "\"\n");
        if (!field.contains(".")) y.append(key).append(": \"").append(value).append("\"\n");
        y.append(stage).append(": {");
        if (!key.equals("dataset") || !field.contains(".")) y.append("dataset: \"preference-data/synthetic/").append(stage).append(".jsonl\", ");
        if (field.contains(".")) y.append(key).append(": \"").append(value).append("\", ");
        y.append("max_steps: 1}\n");
        return y.toString();
    }

    static Response run(String yaml) {
        return asAdmin().contentType("application/yaml").body(yaml.getBytes(StandardCharsets.UTF_8)).post("/api/runs");
    }
}
