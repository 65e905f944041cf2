package org.prefloop.ingest;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.RestAssured;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;

import java.time.Duration;

import static org.awaitility.Awaitility.await;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasItems;

@QuarkusTest
class HealthAndMetricsTest {

    @Test
    void readyMeansTheBrokerAndTheDatabaseAnswer() {
        RestAssured.get("/q/health/live").then().statusCode(200).body("status", equalTo("UP"));
        RestAssured.get("/q/health/ready").then().statusCode(200).body("status", equalTo("UP"))
                .body("checks.name", hasItems("Kafka connection health check", "Database connections health check"));
    }

    @Test
    void metricsCountAcceptedStoredAndDeadLetteredJudgmentsAndTheLag() {
        long comparison = Api.newComparison("metrics?", "yes", "no");
        Api.judge(Api.asAdmin(), comparison, "A");
        await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(comparison) == 1);
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> RestAssured.get("/q/metrics").then().statusCode(200)
                .body(containsString("prefloop_preferences_accepted_total"))
                .body(containsString("prefloop_preferences_stored_total"))
                .body(containsString("prefloop_preferences_dead_lettered_total"))
                .body(containsString("prefloop_ingest_consumer_lag 0.0")));
    }
}
