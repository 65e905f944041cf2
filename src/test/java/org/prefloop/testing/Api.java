package org.prefloop.testing;

import io.restassured.RestAssured;
import io.restassured.http.ContentType;
import io.restassured.specification.RequestSpecification;
import org.eclipse.microprofile.config.ConfigProvider;

import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;

import static org.hamcrest.Matchers.equalTo;

/** What the API tests do again and again: sign in, make users and comparisons, post judgments. */
public final class Api {
    private static final AtomicInteger USERS = new AtomicInteger();

    private Api() {
    }

    /**
     * Health and metrics, on the management interface's own port (a free one in tests), as a probe
     * or Prometheus reaches them.
     */
    public static RequestSpecification management() {
        int port = org.eclipse.microprofile.config.ConfigProvider.getConfig().getValue("quarkus.management.test-port", Integer.class);
        return io.restassured.RestAssured.given().port(port);
    }

    public static String adminPassword() {
        return ConfigProvider.getConfig().getValue("prefloop.admin-password", String.class);
    }

    public static RequestSpecification asAdmin() {
        return as("admin", adminPassword());
    }

    public static RequestSpecification as(String user, String password) {
        return RestAssured.given().auth().preemptive().basic(user, password);
    }

    /** Creates a fresh annotator and returns its name; its password is "password-" + name. */
    public static String newAnnotator() {
        String name = "ann" + USERS.incrementAndGet() + "-" + UUID.randomUUID().toString().substring(0, 6);
        asAdmin().contentType(ContentType.JSON)
                .body(Map.of("username", name, "password", "password-" + name, "role", "annotator"))
                .post("/api/users").then().statusCode(201);
        return name;
    }

    public static RequestSpecification asAnnotator(String name) {
        return as(name, "password-" + name);
    }

    public static long newComparison(String question, String a, String b) {
        return asAdmin().contentType(ContentType.JSON)
                .body(Map.of("prompt", java.util.List.of(Map.of("role", "user", "content", question)),
                        "responses", java.util.List.of(
                                Map.of("text", a, "model", "tiny", "version", "v1"),
                                Map.of("text", b, "model", "tiny", "version", "v2"))))
                .post("/api/comparisons").then().statusCode(201).extract().jsonPath().getLong("id");
    }

    public static UUID judge(RequestSpecification who, long comparisonId, String choice) {
        UUID eventId = UUID.randomUUID();
        who.contentType(ContentType.JSON)
                .body(Map.of("eventId", eventId.toString(), "comparisonId", comparisonId, "choice", choice))
                .post("/api/preferences").then().statusCode(202).body("eventId", equalTo(eventId.toString()));
        return eventId;
    }

    public static int storedJudgments(long comparisonId) {
        return asAdmin().get("/api/comparisons/" + comparisonId + "/preferences").then().statusCode(200)
                .extract().jsonPath().getList("$").size();
    }
}
