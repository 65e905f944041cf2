package org.prefloop.ingest;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.narayana.jta.QuarkusTransaction;
import io.smallrye.common.annotation.Blocking;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.eclipse.microprofile.reactive.messaging.Incoming;
import org.jboss.logging.Logger;
import org.prefloop.collect.Comparison;
import org.prefloop.collect.PreferenceEvent;
import org.prefloop.platform.Sql;

import java.sql.Timestamp;
import java.sql.Types;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Stores the judgments from the topic {@code preferences}, exactly once.
 *
 * <p>A batch of records is stored in one transaction with {@code INSERT ... ON CONFLICT DO NOTHING}
 * (keys: the event id, and one judgment per person per comparison), so a redelivered or re-posted event
 * adds nothing, even with several consumers racing. The batch is acknowledged (its offsets
 * committed) only after that transaction committed; a crash before that means redelivery,
 * which the unique event id absorbs. A record that can never be stored (undecodable, or
 * naming a comparison that does not exist) goes to {@code preferences-dlq} with the reason,
 * and the rest of the batch goes on. A database that does not answer is retried; if it stays
 * down the channel fails, the service reports itself unhealthy, and nothing is acknowledged.
 */
@ApplicationScoped
public class PreferenceConsumer {
    private static final Logger LOG = Logger.getLogger(PreferenceConsumer.class);
    private static final int STORE_ATTEMPTS = 8;

    @Inject
    ObjectMapper json;

    @Inject
    DeadLetters deadLetters;

    @Inject
    Sql sql;

    private final Counter stored;
    private final Counter duplicates;

    @Inject
    PreferenceConsumer(MeterRegistry registry) {
        stored = Counter.builder("prefloop.preferences.stored").description("judgments written to the store").register(registry);
        duplicates = Counter.builder("prefloop.preferences.duplicates").description("redelivered or re-posted judgments the store already had").register(registry);
    }

    @Incoming("preferences-in")
    @Blocking
    public void consume(ConsumerRecords<String, String> records) {
        List<PreferenceEvent> events = new ArrayList<>(records.count());
        List<ConsumerRecord<String, String>> sources = new ArrayList<>(records.count());
        for (ConsumerRecord<String, String> r : records) {
            try {
                PreferenceEvent e = json.readValue(r.value(), PreferenceEvent.class);
                if (e.eventId() == null || e.choice() == null || e.annotator() == null || e.submittedAt() == null) {
                    deadLetters.send(r, "incomplete event: eventId, choice, annotator and submittedAt are required");
                    continue;
                }
                events.add(e);
                sources.add(r);
            } catch (Exception e) {
                deadLetters.send(r, "undecodable event: " + e.getMessage().split("\n")[0]);
            }
        }
        Set<Long> known = existingComparisons(events);
        List<PreferenceEvent> storable = new ArrayList<>(events.size());
        for (int i = 0; i < events.size(); i++) {
            if (known.contains(events.get(i).comparisonId())) storable.add(events.get(i));
            else deadLetters.send(sources.get(i), "comparison " + events.get(i).comparisonId() + " does not exist");
        }
        if (!storable.isEmpty()) {
            int inserted = storeWithRetry(storable);
            stored.increment(inserted);
            duplicates.increment(storable.size() - inserted);
        }
    }

    private Set<Long> existingComparisons(List<PreferenceEvent> events) {
        if (events.isEmpty()) return Set.of();
        Set<Long> ids = new HashSet<>();
        for (PreferenceEvent e : events) ids.add(e.comparisonId());
        return withRetry(() -> QuarkusTransaction.requiringNew().call(() -> new HashSet<>(
                Comparison.getEntityManager().createQuery("select c.id from Comparison c where c.id in :ids", Long.class)
                        .setParameter("ids", ids).getResultList())));
    }

    private int storeWithRetry(List<PreferenceEvent> events) {
        return withRetry(() -> QuarkusTransaction.requiringNew().call(() -> insert(events)));
    }

    private int insert(List<PreferenceEvent> events) {
        return (int) sql.batch("insert into preferences (event_id, comparison_id, annotator, choice, rationale, time_spent_ms, "
                + "submitted_at, judge, strength, criteria) values (?,?,?,?,?,?,?,?,?,?) on conflict do nothing", events, (ps, e) -> {
            ps.setObject(1, e.eventId());
            ps.setLong(2, e.comparisonId());
            ps.setString(3, e.annotator());
            ps.setString(4, e.choice().wire());
            ps.setString(5, e.rationale());
            if (e.timeSpentMs() == null) ps.setNull(6, Types.BIGINT); else ps.setLong(6, e.timeSpentMs());
            ps.setTimestamp(7, Timestamp.from(e.submittedAt()));
            ps.setString(8, e.judge());
            ps.setString(9, e.strength() == null ? null : e.strength().wire());
            ps.setString(10, criteriaJson(e));
        });
    }

    private String criteriaJson(PreferenceEvent e) {
        if (e.criteria() == null || e.criteria().isEmpty()) return null;
        try {
            return json.writeValueAsString(e.criteria());
        } catch (com.fasterxml.jackson.core.JsonProcessingException ex) {
            throw new IllegalStateException(ex);
        }
    }

    private static <T> T withRetry(java.util.function.Supplier<T> work) {
        RuntimeException last = null;
        for (int attempt = 1; attempt <= STORE_ATTEMPTS; attempt++) {
            try {
                return work.get();
            } catch (RuntimeException e) {
                last = e;
                LOG.warnf("storing judgments failed (attempt %d of %d): %s", attempt, STORE_ATTEMPTS, e.getMessage());
                try {
                    Thread.sleep(Math.min(8000, 250L << attempt));
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        throw last;
    }
}
