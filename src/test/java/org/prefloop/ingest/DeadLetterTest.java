package org.prefloop.ingest;

import io.quarkus.test.junit.QuarkusTest;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.junit.jupiter.api.Test;
import org.prefloop.collect.PreferenceEvent;
import org.prefloop.testing.Api;
import org.prefloop.testing.Topics;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Records that can never be stored go to the dead-letter topic with a reason; the consumer moves on. */
@QuarkusTest
class DeadLetterTest {

    @Test
    void undecodableAndDanglingEventsAreDeadLetteredAndTheNextEventIsStored() throws Exception {
        String garbage = "this is not json " + UUID.randomUUID();
        String dangling = "{\"eventId\":\"" + UUID.randomUUID() + "\",\"comparisonId\":987654321,\"annotator\":\"ann\","
                + "\"choice\":\"A\",\"submittedAt\":\"" + Instant.now() + "\"}";
        Topics.produce(PreferenceEvent.TOPIC, "1", garbage);
        Topics.produce(PreferenceEvent.TOPIC, "987654321", dangling);

        long comparison = Api.newComparison("Is water wet?", "yes", "no");
        Api.judge(Api.asAdmin(), comparison, "A");
        await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(comparison) == 1);

        List<ConsumerRecord<String, String>> dead = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = Topics.fromStart(PreferenceEvent.DEAD_LETTER_TOPIC)) {
            await().atMost(Duration.ofSeconds(30)).pollInSameThread().pollInterval(Duration.ZERO).until(() -> {
                consumer.poll(Duration.ofMillis(200)).forEach(dead::add);
                return find(dead, garbage).isPresent() && find(dead, dangling).isPresent();
            });
        }
        ConsumerRecord<String, String> g = find(dead, garbage).orElseThrow();
        ConsumerRecord<String, String> d = find(dead, dangling).orElseThrow();
        assertTrue(reason(g).startsWith("undecodable event"), reason(g));
        assertEquals("comparison 987654321 does not exist", reason(d));
        assertEquals(PreferenceEvent.TOPIC, new String(d.headers().lastHeader("dead-letter-topic").value(), StandardCharsets.UTF_8));
    }

    private static Optional<ConsumerRecord<String, String>> find(List<ConsumerRecord<String, String>> records, String value) {
        return records.stream().filter(r -> value.equals(r.value())).findFirst();
    }

    private static String reason(ConsumerRecord<String, String> r) {
        return new String(r.headers().lastHeader("dead-letter-reason").value(), StandardCharsets.UTF_8);
    }
}
