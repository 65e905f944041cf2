package org.prefloop.eval;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import org.junit.jupiter.api.Test;
import org.prefloop.model.TinyModelRecipe;
import org.prefloop.registry.ModelVersion;
import org.prefloop.runs.DemoModelProfile;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.hamcrest.Matchers.allOf;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.prefloop.testing.Api.asAdmin;

/**
 * The evaluation gate through real HTTP and PostgreSQL: the bundled demo model (the synthetic
 * task's SFT model, right on most held-out words) and an untrained model of the same shape (right
 * on none) are registered as parent and child both ways; only the child that is better on the
 * held-out words may be promoted with {@code require=evaluation}.
 */
@QuarkusTest
@TestProfile(DemoModelProfile.class)
class EvaluationGateTest {
    static final Path TASK = Path.of("preference-data/synthetic").toAbsolutePath();

    @Test
    void thePairedIntervalOfTheDifferenceIsDeterministicAndCentredOnIt() {
        boolean[] a = new boolean[100], b = new boolean[100];
        for (int i = 0; i < 100; i++) {
            a[i] = i < 60;
            b[i] = i < 50;
        }
        BradleyTerry.Interval d = EvaluationGate.difference(a, b, 2000, 17);
        assertEquals(0.10, d.estimate(), 1e-9);
        assertEquals(100, d.matches());
        // ten examples differ, all one way: the paired interval stays above zero
        assertTrue(d.low() > 0 && d.high() < 0.2, "interval " + d);
        assertEquals(d, EvaluationGate.difference(a, b, 2000, 17), "same outcomes, same interval");
        BradleyTerry.Interval same = EvaluationGate.difference(a, a, 2000, 17);
        assertEquals(0, same.low(), 0);
        assertEquals(0, same.high(), 0);
    }

    @Test
    void onlyAVersionThatBeatsItsParentOnHeldOutExamplesIsPromotedWithRequireEvaluation() throws IOException {
        Path untrained = Path.of("target", "evaluation-gate-untrained").toAbsolutePath();
        if (!Files.exists(untrained.resolve("config.json"))) TinyModelRecipe.read(TASK.resolve("tiny-model.json")).write(untrained);
        // 80 held-out words, kept under target/ (a file root in tests)
        Path heldout = Path.of("target", "evaluation-gate-heldout.jsonl");
        Files.write(heldout, Files.readAllLines(TASK.resolve("heldout.jsonl")).subList(0, 80));
        // a copy of the demo model: a version on models/demo itself would be taken for the service's base version at its next start
        Path demoCopy = Path.of("target", "evaluation-gate-demo").toAbsolutePath();
        if (!Files.exists(demoCopy.resolve("config.json"))) {
            Files.createDirectories(demoCopy);
            try (var files = Files.list(Path.of("models/demo"))) {
                for (Path f : files.toList()) Files.copy(f, demoCopy.resolve(f.getFileName()));
            }
        }
        String demo = demoCopy.toString();
        long t = System.nanoTime();
        long[] ids = QuarkusTransaction.requiringNew().call(() -> {
            ModelVersion worse = version("gate-untrained-" + t, untrained.toString(), null);
            ModelVersion better = version("gate-demo-" + t, demo, worse.id);
            ModelVersion worseChild = version("gate-untrained-child-" + t, untrained.toString(), better.id);
            return new long[]{worse.id, better.id, worseChild.id};
        });
        String worse = "gate-untrained-" + t, better = "gate-demo-" + t, worseChild = "gate-untrained-child-" + t;

        asAdmin().post("/api/models/" + ids[1] + "/promote?require=evaluation").then().statusCode(409)
                .contentType("application/problem+json").body("detail", containsString("no held-out evaluation"));
        asAdmin().post("/api/models/" + ids[1] + "/promote?require=judgement").then().statusCode(422)
                .contentType("application/problem+json").body("detail", containsString("require must be among evaluation, head-to-head"));

        double good = evaluate(better, heldout);
        asAdmin().post("/api/models/" + ids[1] + "/promote?require=evaluation").then().statusCode(409)
                .body("detail", containsString("its parent " + worse + " was never evaluated"));
        double bad = evaluate(worse, heldout);
        evaluate(worseChild, heldout);
        System.out.printf("held-out exact match: %s %.3f, %s %.3f%n", better, good, worse, bad);
        assertTrue(good > bad + 0.3, "the demo model is much better than an untrained one: " + good + " vs " + bad);

        // the worse child of the better parent is refused, with the figures
        asAdmin().post("/api/models/" + ids[2] + "/promote?require=evaluation").then().statusCode(409)
                .contentType("application/problem+json")
                .body("detail", allOf(containsString("does not beat its parent"), containsString("95% interval"),
                        containsString(String.format(java.util.Locale.ROOT, "%.3f against %.3f", bad, good))));
        // both gates: the evaluation passes, the head-to-head one (never compared) refuses
        asAdmin().post("/api/models/" + ids[1] + "/promote?require=evaluation,head-to-head").then().statusCode(409)
                .body("detail", allOf(containsString("head-to-head: "), containsString("never compared")))
                .body("detail", org.hamcrest.Matchers.not(containsString("evaluation: ")));
        asAdmin().get("/api/models/" + ids[1]).then().body("promoted", equalTo(false));
        // the better child passes the evaluation gate alone
        asAdmin().post("/api/models/" + ids[1] + "/promote?require=evaluation").then().statusCode(200).body("promoted", equalTo(true));
        // leave the demo model served, as the profile's other tests expect
        long demoBase = asAdmin().get("/api/models").jsonPath().getLong("find { it.name == 'base-demo' }.id");
        asAdmin().post("/api/models/" + demoBase + "/promote").then().statusCode(200);
    }

    private static double evaluate(String model, Path file) {
        return asAdmin().contentType(ContentType.JSON).body(Map.of("file", file.toString(), "model", model, "max_tokens", 8))
                .post("/api/evaluations").then().statusCode(200).body("examples", equalTo(80)).extract().jsonPath().getDouble("exactMatch");
    }

    private static ModelVersion version(String name, String base, Long parent) {
        ModelVersion v = new ModelVersion();
        v.name = name;
        v.parentId = parent;
        v.baseModel = base;
        v.persist();
        return v;
    }
}
