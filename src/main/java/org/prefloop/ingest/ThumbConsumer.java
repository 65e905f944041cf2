package org.prefloop.ingest;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.narayana.jta.QuarkusTransaction;
import io.smallrye.common.annotation.Blocking;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.eclipse.microprofile.reactive.messaging.Incoming;
import org.prefloop.collect.ThumbEvent;
import org.prefloop.platform.Sql;

import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Stores thumbs from the topic {@code feedback}, exactly once, as {@link PreferenceConsumer} stores
 * judgments: one transaction per batch, offsets committed after it. One verdict per subject, the
 * latest by submission time: an older verdict is deleted only by a newer one, and the insert does
 * nothing on conflict, so a redelivered event (or an older one arriving late) changes nothing.
 * (Written as delete-then-insert rather than an upsert because H2, the embedded store, has no
 * {@code ON CONFLICT DO UPDATE}.)
 */
@ApplicationScoped
public class ThumbConsumer {
    @Inject
    ObjectMapper json;

    @Inject
    DeadLetters deadLetters;

    @Inject
    Sql sql;

    @Incoming("feedback-in")
    @Blocking
    public void consume(ConsumerRecords<String, String> records) {
        List<ThumbEvent> events = new ArrayList<>(records.count());
        for (ConsumerRecord<String, String> r : records) {
            try {
                ThumbEvent e = json.readValue(r.value(), ThumbEvent.class);
                if (e.eventId() == null || e.subject() == null || e.prompt() == null || e.completion() == null
                        || e.author() == null || e.submittedAt() == null || e.source() == null) {
                    deadLetters.send(r, "incomplete thumbs event: eventId, subject, source, prompt, completion, author and submittedAt are required");
                    continue;
                }
                events.add(e);
            } catch (Exception e) {
                deadLetters.send(r, "undecodable thumbs event: " + e.getMessage().split("\n")[0]);
            }
        }
        if (!events.isEmpty()) QuarkusTransaction.requiringNew().run(() -> store(events));
    }

    private void store(List<ThumbEvent> events) {
        // Run one at a time, each event's delete-then-insert would leave on a subject its latest
        // verdict, or of equal times the first (the insert does nothing on conflict). Keeping just
        // that one per subject lets the deletes and the inserts go as two batches with the same end.
        Map<String, ThumbEvent> kept = new LinkedHashMap<>();
        for (ThumbEvent e : events) kept.merge(e.subject(), e, (first, next) -> next.submittedAt().isAfter(first.submittedAt()) ? next : first);
        sql.batch("delete from thumbs where subject = ? and submitted_at < ?", kept.values(), (ps, e) -> {
            ps.setString(1, e.subject());
            ps.setTimestamp(2, Timestamp.from(e.submittedAt()));
        });
        sql.batch("insert into thumbs (subject, event_id, source, completion_id, model_name, prompt, completion, label, author, "
                + "submitted_at) values (?,?,?,?,?,?,?,?,?,?) on conflict do nothing", kept.values(), (ps, e) -> {
            ps.setString(1, e.subject());
            ps.setObject(2, e.eventId());
            ps.setString(3, e.source());
            ps.setString(4, e.completionId());
            ps.setString(5, e.modelName());
            ps.setString(6, e.prompt());
            ps.setString(7, e.completion());
            ps.setBoolean(8, e.label());
            ps.setString(9, e.author());
            ps.setTimestamp(10, Timestamp.from(e.submittedAt()));
        });
    }
}
