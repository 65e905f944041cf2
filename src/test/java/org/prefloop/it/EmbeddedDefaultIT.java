package org.prefloop.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.ServiceProcess;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The packaged service with no configuration: in-process Kafka and H2 under the data directory, kept across restarts. */
class EmbeddedDefaultIT {
    private final ObjectMapper json = new ObjectMapper();

    @Test
    void startsWithNoConfigurationStoresAJudgmentAndKeepsItAcrossARestart(@TempDir Path data) throws Exception {
        long comparison;
        String eventId = UUID.randomUUID().toString();
        try (ServiceProcess service = new ServiceProcess(data, Map.of()).start()) {
            var created = service.postJson("/api/comparisons", "{\"prompt\":[{\"role\":\"user\",\"content\":\"2+3?\"}],"
                    + "\"responses\":[{\"text\":\"5\",\"model\":\"m\",\"version\":\"1\"},{\"text\":\"6\",\"model\":\"m\",\"version\":\"1\"}]}");
            assertEquals(201, created.statusCode(), created.body());
            comparison = json.readTree(created.body()).get("id").asLong();
            var accepted = service.postJson("/api/preferences",
                    "{\"eventId\":\"" + eventId + "\",\"comparisonId\":" + comparison + ",\"choice\":\"A\"}");
            assertEquals(202, accepted.statusCode(), accepted.body());
            assertEquals(1, awaitStored(service, comparison, 1).size());
            service.stop();
        }
        assertTrue(Files.isDirectory(data.resolve("kafka")), "the broker keeps its log under the data directory");
        assertTrue(Files.list(data.resolve("db")).findAny().isPresent(), "the store keeps its files under the data directory");

        try (ServiceProcess again = new ServiceProcess(data, Map.of()).start()) {
            JsonNode stored = awaitStored(again, comparison, 1);
            assertEquals(eventId, stored.get(0).get("eventId").asText());
            // one judgment per person: the admin's second is refused, another person's is stored
            var again409 = again.postJson("/api/preferences",
                    "{\"eventId\":\"" + UUID.randomUUID() + "\",\"comparisonId\":" + comparison + ",\"choice\":\"B\"}");
            assertEquals(409, again409.statusCode(), again409.body());
            assertEquals(201, again.postJson("/api/users", "{\"username\":\"ann\",\"password\":\"ann-password\",\"role\":\"annotator\"}").statusCode());
            var second = again.postJsonAs("ann", "ann-password", "/api/preferences",
                    "{\"eventId\":\"" + UUID.randomUUID() + "\",\"comparisonId\":" + comparison + ",\"choice\":\"B\"}");
            assertEquals(202, second.statusCode(), second.body());
            assertEquals(2, awaitStored(again, comparison, 2).size());
        }
    }

    private JsonNode awaitStored(ServiceProcess service, long comparison, int expected) throws Exception {
        JsonNode list = null;
        for (int i = 0; i < 120; i++) {
            list = json.readTree(service.get("/api/comparisons/" + comparison + "/preferences").body());
            if (list.size() >= expected) return list;
            Thread.sleep(250);
        }
        throw new AssertionError("expected " + expected + " stored judgments, have " + list);
    }
}
