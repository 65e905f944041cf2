package org.prefloop.collect;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.smallrye.reactive.messaging.MutinyEmitter;
import io.smallrye.reactive.messaging.kafka.Record;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.eclipse.microprofile.reactive.messaging.Channel;

import java.time.Duration;

/**
 * Hands thumbs to Kafka ({@code feedback}) the way judgments go to {@code preferences}: an
 * idempotent, acks=all producer, and the caller answers only once the broker has the event; the
 * ingest consumer ({@code ingest/ThumbConsumer}) stores it, once.
 */
@ApplicationScoped
public class ThumbPublisher {
    @Inject
    ObjectMapper json;

    @Inject
    @Channel("feedback-out")
    MutinyEmitter<Record<String, String>> feedback;

    /** Sends the event and waits for the broker's acknowledgement; a RuntimeException if it did not come. */
    public void publish(ThumbEvent event) {
        String payload;
        try {
            payload = json.writeValueAsString(event);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        feedback.send(Record.of(event.subject(), payload)).await().atMost(Duration.ofSeconds(30));
    }
}
