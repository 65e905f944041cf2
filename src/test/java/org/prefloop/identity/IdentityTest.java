package org.prefloop.identity;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;

import java.util.Map;

import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.startsWith;

@QuarkusTest
class IdentityTest {

    @Test
    void theFirstAdminSignsInWithTheConfiguredPassword() {
        Api.asAdmin().get("/api/users/me").then().statusCode(200).body("username", equalTo("admin")).body("role", equalTo("admin"));
    }

    @Test
    void annotatorsCannotDoWhatAdminsDo() {
        String annotator = Api.newAnnotator();
        Api.asAnnotator(annotator).get("/api/users/me").then().statusCode(200).body("role", equalTo("annotator"));
        Api.asAnnotator(annotator).contentType(ContentType.JSON)
                .body(Map.of("prompt", java.util.List.of(Map.of("role", "user", "content", "x")),
                        "responses", java.util.List.of(Map.of("text", "a"), Map.of("text", "b"))))
                .post("/api/comparisons").then().statusCode(403);
        Api.asAnnotator(annotator).get("/api/export/preferences").then().statusCode(403);
        Api.asAnnotator(annotator).contentType(ContentType.JSON)
                .body(Map.of("username", "sneaky", "password", "password123", "role", "admin"))
                .post("/api/users").then().statusCode(403);
    }

    @Test
    void badUsersAreRefusedByField() {
        String existing = Api.newAnnotator();
        Object[][] cases = {
                {Map.of("username", existing, "password", "password123"), 409, "username"},
                {Map.of("username", "x", "password", "password123"), 422, "username"},
                {Map.of("username", "shortpass", "password", "123"), 422, "password"},
                {Map.of("username", "badrole", "password", "password123", "role", "root"), 422, "role"},
        };
        for (Object[] c : cases) {
            Api.asAdmin().contentType(ContentType.JSON).body(c[0]).post("/api/users").then()
                    .statusCode((int) c[1]).contentType(startsWith("application/problem+json")).body("field", equalTo(c[2]));
        }
    }
}
