package org.prefloop.collect;

import java.time.Instant;
import java.util.UUID;

/**
 * A thumbs up or down on one answer, as it travels on the Kafka topic {@code feedback}, keyed by
 * its subject ({@code completion:<id>}), so that verdicts on one answer stay in order.
 *
 * @param subject    what the verdict is about: {@code completion:<id>} for a /v1 completion
 * @param source     {@code v1} (an app's feedback call) or {@code annotator}
 * @param prompt     the prompt messages, as JSON
 * @param label      true: desirable (thumbs up)
 */
public record ThumbEvent(UUID eventId, String subject, String source, String completionId, String modelName, String prompt,
                         String completion, boolean label, String author, Instant submittedAt) {
}
