package org.prefloop.platform;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.RestAssured;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;

import java.util.Map;

import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;

/** A process started with only the ingest role answers no API request, but reports its health. */
@QuarkusTest
@TestProfile(RolesTest.IngestOnly.class)
class RolesTest {

    public static class IngestOnly implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("prefloop.roles", "ingest");
        }
    }

    @Test
    void anIngestOnlyProcessExposesNeitherTheApiNorV1() {
        Api.asAdmin().get("/api/users/me").then().statusCode(404).body("detail", containsString("'web' role"));
        Api.asAdmin().get("/console").then().statusCode(404);
        RestAssured.get("/login").then().statusCode(404);
        // the /api endpoints that generate belong to the serve role (the model is there)
        Api.asAdmin().contentType("application/json").body("{}").post("/api/rounds").then().statusCode(404)
                .body("detail", containsString("'serve' role"));
        Api.asAdmin().contentType("application/json").body("{}").post("/api/evaluations").then().statusCode(404)
                .body("detail", containsString("'serve' role"));
        RestAssured.given().header("Authorization", "Bearer seeded-test-key-0123456789").get("/v1/models").then().statusCode(404);
        org.prefloop.testing.Api.management().get("/q/health/ready").then().statusCode(200).body("status", equalTo("UP"));
    }
}
