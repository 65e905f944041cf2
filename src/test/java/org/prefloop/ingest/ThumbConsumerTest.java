package org.prefloop.ingest;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.prefloop.collect.ThumbEvent;
import org.prefloop.platform.Sql;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Several verdicts on one answer in one consumer batch: the latest stays (of equal times, the first
 * to arrive), whatever their order in the batch, and the batch delivered again changes nothing.
 */
@QuarkusTest
class ThumbConsumerTest {
    @Inject
    ThumbConsumer consumer;
    @Inject
    ObjectMapper json;
    @Inject
    Sql sql;

    private final Instant t0 = Instant.parse("2026-01-01T00:00:00Z");

    private ThumbEvent thumb(String subject, int second, boolean label) {
        return new ThumbEvent(UUID.randomUUID(), subject, "annotator", null, null, "[]", "an answer", label, "ann", t0.plusSeconds(second));
    }

    private ConsumerRecords<String, String> batch(List<ThumbEvent> events) throws Exception {
        List<ConsumerRecord<String, String>> records = new ArrayList<>();
        for (ThumbEvent e : events) records.add(new ConsumerRecord<>("feedback", 0, records.size(), e.subject(), json.writeValueAsString(e)));
        return new ConsumerRecords<>(Map.of(new TopicPartition("feedback", 0), records));
    }

    private UUID kept(String subject) {
        List<UUID> ids = sql.list("select event_id from thumbs where subject = ?", List.of(subject), rs -> rs.getObject(1, UUID.class));
        assertEquals(1, ids.size(), subject);
        return ids.get(0);
    }

    @Test
    void theLatestVerdictOfABatchStaysAndARedeliveryChangesNothing() throws Exception {
        String late = "test:" + UUID.randomUUID(), early = "test:" + UUID.randomUUID();
        ThumbEvent newest = thumb(late, 2, true), older = thumb(late, 1, false), sameTime = thumb(late, 2, false);
        ThumbEvent first = thumb(early, 1, true), last = thumb(early, 3, false);
        ConsumerRecords<String, String> records = batch(List.of(newest, first, older, sameTime, last));

        consumer.consume(records);
        assertEquals(newest.eventId(), kept(late), "the latest, before an older one and one of the same time");
        assertEquals(last.eventId(), kept(early), "the latest, after an older one");

        consumer.consume(records);
        assertEquals(newest.eventId(), kept(late));
        assertEquals(last.eventId(), kept(early));
    }
}
