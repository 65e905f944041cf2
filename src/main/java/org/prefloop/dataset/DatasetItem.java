package org.prefloop.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One example of a frozen dataset. Preference items hold prompt, chosen and rejected as the
 * JSON values TRL reads (strings for the plain format, message lists for the conversational
 * one); SFT items hold the conversation. Consensus, agreement, votes and the raw votes say
 * which judgments stand behind a pair.
 */
record DatasetItem(Long comparisonId, JsonNode prompt, JsonNode chosen, JsonNode rejected, JsonNode messages,
                   String consensus, Double agreement, Integer votes, double weight, JsonNode rawVotes) {

    static DatasetItem sft(Long comparisonId, JsonNode messages) {
        return new DatasetItem(comparisonId, null, null, null, messages, null, null, null, 1.0, null);
    }

    /** The line this item exports as, in TRL's format; {@code weight} only where it is not 1. */
    String exportLine(ObjectMapper json) {
        ObjectNode line = json.createObjectNode();
        if (messages != null) {
            line.set("messages", messages);
        } else {
            line.set("prompt", prompt);
            line.set("chosen", chosen);
            line.set("rejected", rejected);
            if (weight != 1.0) line.put("weight", weight);
        }
        try {
            return json.writeValueAsString(line);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
