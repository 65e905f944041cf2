package org.prefloop.platform;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.RestAssured;
import org.junit.jupiter.api.Test;

import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.notNullValue;

@QuarkusTest
class OpenApiTest {

    @Test
    void theApiIsDescribedAndBrowsable() {
        RestAssured.given().accept("application/json").get("/q/openapi").then().statusCode(200)
                .body("paths.'/api/preferences'.post", notNullValue())
                .body("paths.'/api/comparisons/import'.post", notNullValue());
        RestAssured.get("/q/swagger-ui/").then().statusCode(200).body(containsString("swagger"));
    }
}
