package org.prefloop.ingest;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.narayana.jta.QuarkusTransaction;
import io.smallrye.common.annotation.Blocking;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.eclipse.microprofile.reactive.messaging.Incoming;
import org.hibernate.Session;
import org.prefloop.collect.Comparison;
import org.prefloop.collect.ThumbEvent;

import java.sql.PreparedStatement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.List;

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

    private static void store(List<ThumbEvent> events) {
        Comparison.getEntityManager().unwrap(Session.class).doWork(conn -> {
            // in record order: a batch may hold several verdicts on one subject
            try (PreparedStatement delete = conn.prepareStatement("delete from thumbs where subject = ? and submitted_at < ?");
                 PreparedStatement insert = conn.prepareStatement("insert into thumbs (subject, event_id, source, completion_id, model_name, "
                         + "prompt, completion, label, author, submitted_at) values (?,?,?,?,?,?,?,?,?,?) on conflict do nothing")) {
                for (ThumbEvent e : events) {
                    delete.setString(1, e.subject());
                    delete.setTimestamp(2, Timestamp.from(e.submittedAt()));
                    delete.executeUpdate();
                    insert.setString(1, e.subject());
                    insert.setObject(2, e.eventId());
                    insert.setString(3, e.source());
                    insert.setString(4, e.completionId());
                    insert.setString(5, e.modelName());
                    insert.setString(6, e.prompt());
                    insert.setString(7, e.completion());
                    insert.setBoolean(8, e.label());
                    insert.setString(9, e.author());
                    insert.setTimestamp(10, Timestamp.from(e.submittedAt()));
                    insert.executeUpdate();
                }
            }
        });
    }
}
