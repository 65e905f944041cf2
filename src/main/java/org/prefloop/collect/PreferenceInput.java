package org.prefloop.collect;

import com.fasterxml.jackson.databind.JsonNode;
import org.prefloop.platform.ProblemException;

import java.util.UUID;

/**
 * The body of {@code POST /api/preferences}, checked field by field. Parsing goes through a
 * JSON tree so that every problem names its field instead of a Jackson type error.
 */
record PreferenceInput(UUID eventId, long comparisonId, Choice choice, String rationale, Long timeSpentMs, String annotator) {
    static final int MAX_RATIONALE_BYTES = 16 * 1024;

    static PreferenceInput from(JsonNode body) {
        if (body == null || !body.isObject()) throw ProblemException.badRequest(null, "the body must be a JSON object");
        JsonNode id = body.get("eventId");
        if (id == null || id.isNull()) throw ProblemException.invalid("eventId", "eventId is required (a UUID the client picks, reused on retry)");
        UUID eventId;
        try {
            eventId = UUID.fromString(id.asText());
        } catch (IllegalArgumentException e) {
            throw ProblemException.invalid("eventId", "eventId must be a UUID; got '" + id.asText() + "'");
        }
        JsonNode cid = body.get("comparisonId");
        if (cid == null || !cid.canConvertToLong() || !cid.isIntegralNumber()) {
            throw ProblemException.invalid("comparisonId", "comparisonId must be the numeric id of a comparison");
        }
        JsonNode ch = body.get("choice");
        if (ch == null || !ch.isTextual()) throw ProblemException.invalid("choice", "choice is required: A, B, tie or both_bad");
        Choice choice;
        try {
            choice = Choice.parse(ch.asText());
        } catch (IllegalArgumentException e) {
            throw ProblemException.invalid("choice", e.getMessage());
        }
        JsonNode r = body.get("rationale");
        String rationale = r == null || r.isNull() ? null : r.asText();
        if (rationale != null && rationale.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > MAX_RATIONALE_BYTES) {
            throw ProblemException.invalid("rationale", "rationale is longer than 16 KiB");
        }
        JsonNode t = body.get("timeSpentMs");
        Long timeSpent = null;
        if (t != null && !t.isNull()) {
            if (!t.isIntegralNumber() || t.asLong() < 0) throw ProblemException.invalid("timeSpentMs", "timeSpentMs must be a non-negative integer");
            timeSpent = t.asLong();
        }
        JsonNode a = body.get("annotator");
        String annotator = a == null || a.isNull() ? null : a.asText();
        return new PreferenceInput(eventId, cid.asLong(), choice, rationale, timeSpent, annotator);
    }
}
