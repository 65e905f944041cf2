package org.prefloop.collect;

import com.fasterxml.jackson.databind.JsonNode;
import org.prefloop.platform.ProblemException;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * The body of {@code POST /api/preferences}, checked field by field. Parsing goes through a
 * JSON tree so that every problem names its field instead of a Jackson type error.
 */
record PreferenceInput(UUID eventId, long comparisonId, Choice choice, String rationale, Long timeSpentMs, String annotator,
                       Strength strength, Map<String, Choice> criteria) {
    static final int MAX_RATIONALE_BYTES = 16 * 1024;

    /** {@code criteria}: the criteria this project asks about ({@code prefloop.annotation.criteria}); others are refused. */
    static PreferenceInput from(JsonNode body, List<String> criteria) {
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
        return new PreferenceInput(eventId, cid.asLong(), choice, rationale, timeSpent, annotator, strength(body, choice),
                criteria(body, criteria));
    }

    private static Strength strength(JsonNode body, Choice choice) {
        JsonNode s = body.get("strength");
        if (s == null || s.isNull()) return null;
        if (!s.isTextual()) throw ProblemException.invalid("strength", "strength must be much_better, better or slightly_better");
        if (!choice.decisive()) throw ProblemException.invalid("strength", "strength goes with an A or B verdict, not with " + choice.wire());
        try {
            return Strength.parse(s.asText());
        } catch (IllegalArgumentException e) {
            throw ProblemException.invalid("strength", e.getMessage());
        }
    }

    /** Per-criterion verdicts, each optional; null when none were given. */
    private static Map<String, Choice> criteria(JsonNode body, List<String> asked) {
        JsonNode c = body.get("criteria");
        if (c == null || c.isNull()) return null;
        if (!c.isObject()) throw ProblemException.invalid("criteria", "criteria must be an object of criterion: verdict (A, B, tie or both_bad)");
        Map<String, Choice> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = c.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String field = "criteria." + e.getKey();
            if (!asked.contains(e.getKey())) {
                throw ProblemException.invalid(field, asked.isEmpty() ? "this project asks for no criteria"
                        : "'" + e.getKey() + "' is not a criterion of this project (" + String.join(", ", asked) + ")");
            }
            if (e.getValue().isNull()) continue;
            try {
                if (!e.getValue().isTextual()) throw new IllegalArgumentException("a verdict must be A, B, tie or both_bad");
                out.put(e.getKey(), Choice.parse(e.getValue().asText()));
            } catch (IllegalArgumentException ex) {
                throw ProblemException.invalid(field, ex.getMessage());
            }
        }
        return out.isEmpty() ? null : out;
    }
}
