package org.prefloop.collect;

import java.time.Instant;
import java.util.UUID;

/**
 * One judgment as it travels on the Kafka topic {@code preferences} (keyed by comparison id).
 * The client picks {@code eventId}; the store keeps each event id once, so a retried or
 * redelivered event is harmless. {@code judge} is null for a person's judgment and names the
 * programmatic checker or LLM judge otherwise, so that datasets can keep the two apart.
 */
public record PreferenceEvent(UUID eventId, long comparisonId, String annotator, Choice choice, String rationale,
                              Long timeSpentMs, Instant submittedAt, String judge) {
    public static final String TOPIC = "preferences";
    public static final String DEAD_LETTER_TOPIC = "preferences-dlq";
}
