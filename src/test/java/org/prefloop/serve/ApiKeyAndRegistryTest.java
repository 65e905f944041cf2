package org.prefloop.serve;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.RestAssured;
import io.restassured.http.ContentType;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;
import org.prefloop.registry.ModelVersion;

import java.util.Map;

import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasItems;

@QuarkusTest
class ApiKeyAndRegistryTest {

    private static io.restassured.specification.RequestSpecification bearer(String key) {
        return RestAssured.given().header("Authorization", "Bearer " + key);
    }

    @Test
    void v1NeedsAnActiveKeyAndRevokingOneShutsItOut() {
        RestAssured.get("/v1/models").then().statusCode(401).body("error.code", equalTo("invalid_api_key"));
        bearer("seeded-test-key-0123456789").get("/v1/models").then().statusCode(200).body("object", equalTo("list"));

        var created = Api.asAdmin().contentType(ContentType.JSON).body(Map.of("name", "eval-harness"))
                .post("/api/keys").then().statusCode(201).extract().jsonPath();
        String key = created.getString("key");
        bearer(key).get("/v1/models").then().statusCode(200);
        Api.asAdmin().get("/api/keys").then().body("name", hasItems("eval-harness", "PREFLOOP_API_KEYS[0]"))
                .body("find { it.name == 'eval-harness' }.prefix", equalTo(key.substring(0, 8)));
        Api.asAdmin().delete("/api/keys/" + created.getLong("id")).then().statusCode(200);
        bearer(key).get("/v1/models").then().statusCode(401);
        bearer("pl-guessed").get("/v1/models").then().statusCode(401);
        Api.asAnnotator(Api.newAnnotator()).contentType(ContentType.JSON).body(Map.of("name", "mine"))
                .post("/api/keys").then().statusCode(403);
    }

    @Test
    void promotingAVersionMakesItTheServedAliasAndRollbackIsAnotherPromotion() {
        long[] ids = QuarkusTransaction.requiringNew().call(() -> {
            ModelVersion base = version("base-" + System.nanoTime(), null);
            ModelVersion tuned = version("dpo-" + System.nanoTime(), base.id);
            return new long[]{base.id, tuned.id};
        });
        Api.asAdmin().post("/api/models/" + ids[1] + "/promote").then().statusCode(200).body("promoted", equalTo(true));
        String tunedName = Api.asAdmin().get("/api/models/" + ids[1]).then().body("parentId", equalTo((int) ids[0]))
                .extract().path("name");
        bearer("seeded-test-key-0123456789").get("/v1/models").then().statusCode(200)
                .body("data[0].id", equalTo(ModelsResource.PROMOTED_ALIAS))
                .body("data.id", hasItems(tunedName));
        Api.asAdmin().post("/api/models/" + ids[0] + "/promote").then().statusCode(200);
        Api.asAdmin().get("/api/models/" + ids[1]).then().body("promoted", equalTo(false));
        Api.asAdmin().get("/api/models/" + ids[0]).then().body("promoted", equalTo(true));
        Api.asAdmin().post("/api/models/987654321/promote").then().statusCode(404);
    }

    private static ModelVersion version(String name, Long parent) {
        ModelVersion v = new ModelVersion();
        v.name = name;
        v.parentId = parent;
        v.baseModel = "/models/base";
        v.adapterPath = parent == null ? null : "/models/" + name;
        v.persist();
        return v;
    }
}
