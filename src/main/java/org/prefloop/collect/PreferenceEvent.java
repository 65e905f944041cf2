package org.prefloop.collect;

import java.time.Instant;
import java.util.Map;
import java.util.UUID;

/**
 * One judgment as it travels on the Kafka topic {@code preferences} (keyed by comparison id).
 * The client picks {@code eventId}; the store keeps each event id once, so a retried or
 * redelivered event is harmless. {@code judge} is null for a person's judgment and names the
 * programmatic checker or LLM judge otherwise, so that datasets can keep the two apart.
 * {@code strength} (A or B verdicts only) says how much better, and {@code criteria} holds the
 * per-criterion verdicts a project asks for beside the overall one; both are null when not given.
 */
public record PreferenceEvent(UUID eventId, long comparisonId, String annotator, Choice choice, String rationale,
                              Long timeSpentMs, Instant submittedAt, String judge, Strength strength, Map<String, Choice> criteria) {
    public static final String TOPIC = "preferences";
    public static final String DEAD_LETTER_TOPIC = "preferences-dlq";

    /** A judgment with the overall verdict only (checkers and judges give no strength nor criteria). */
    public PreferenceEvent(UUID eventId, long comparisonId, String annotator, Choice choice, String rationale,
                           Long timeSpentMs, Instant submittedAt, String judge) {
        this(eventId, comparisonId, annotator, choice, rationale, timeSpentMs, submittedAt, judge, null, null);
    }
}
