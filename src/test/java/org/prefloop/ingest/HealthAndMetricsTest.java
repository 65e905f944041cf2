package org.prefloop.ingest;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.RestAssured;
import org.junit.jupiter.api.Test;
import org.prefloop.collect.PreferenceEvent;
import org.prefloop.testing.Api;
import org.prefloop.testing.Topics;

import java.time.Duration;
import java.util.List;
import java.util.UUID;

import static org.awaitility.Awaitility.await;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasItems;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** The operator's view: health checks that mean the broker and the database answer, counters that count. */
@QuarkusTest
class HealthAndMetricsTest {

    @Test
    void readyMeansTheBrokerAndTheDatabaseAnswer() {
        org.prefloop.testing.Api.management().get("/q/health/live").then().statusCode(200).body("status", equalTo("UP"));
        org.prefloop.testing.Api.management().get("/q/health/ready").then().statusCode(200).body("status", equalTo("UP"))
                .body("checks.name", hasItems("Kafka connection health check", "Database connections health check"));
    }

    @Test
    void metricsCountAcceptedStoredDuplicateAndDeadLetteredJudgmentsAndTheLag() throws Exception {
        long comparison = Api.newComparison("metrics?", "yes", "no");
        // a counter whose bean has not started yet is not exported: that is 0 so far
        double accepted = metricOrZero("prefloop_preferences_accepted_total");
        double stored = metricOrZero("prefloop_preferences_stored_total");
        double deadLettered = metricOrZero("prefloop_preferences_dead_lettered_total");
        double duplicates = metricOrZero("prefloop_preferences_duplicates_total");

        UUID eventId = Api.judge(Api.asAdmin(), comparison, "A");
        Topics.produce(PreferenceEvent.TOPIC, "1", "not a judgment " + UUID.randomUUID());
        await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(comparison) == 1);
        // the same judgment again, as a redelivery brings it: the store already has it
        Topics.produce(PreferenceEvent.TOPIC, String.valueOf(comparison), "{\"eventId\":\"" + eventId + "\",\"comparisonId\":" + comparison
                + ",\"annotator\":\"admin\",\"choice\":\"A\",\"submittedAt\":\"" + java.time.Instant.now() + "\"}");

        // Each counter moves by exactly what happened: one accepted, one stored, one duplicate, one dead letter.
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
            assertEquals(accepted + 1, metric("prefloop_preferences_accepted_total"), "accepted");
            assertEquals(stored + 1, metric("prefloop_preferences_stored_total"), "stored");
            assertEquals(duplicates + 1, metric("prefloop_preferences_duplicates_total"), "duplicates");
            assertEquals(deadLettered + 1, metric("prefloop_preferences_dead_lettered_total"), "dead-lettered");
            assertEquals(0.0, metric("prefloop_ingest_consumer_lag"), "lag once everything is consumed");
        });
        assertEquals(1, Api.storedJudgments(comparison), "the redelivery stored nothing");
    }

    /** The value of a metric on /q/metrics (summed over its tags); fails when it is not there. */
    private static double metric(String name) {
        List<String> samples = samples(name);
        assertFalse(samples.isEmpty(), name + " is not exported");
        return sum(samples);
    }

    private static double metricOrZero(String name) {
        return sum(samples(name));
    }

    private static List<String> samples(String name) {
        String text = org.prefloop.testing.Api.management().get("/q/metrics").then().statusCode(200).extract().asString();
        return text.lines().filter(l -> l.startsWith(name + " ") || l.startsWith(name + "{")).toList();
    }

    private static double sum(List<String> samples) {
        return samples.stream().mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).sum();
    }
}
