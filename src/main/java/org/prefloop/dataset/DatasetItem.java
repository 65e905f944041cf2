package org.prefloop.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One example of a frozen dataset. Preference items hold prompt, chosen and rejected as the
 * JSON values TRL reads (strings for the plain format, message lists for the conversational
 * one); SFT items hold the conversation. Consensus, agreement, votes and the raw votes say
 * which judgments stand behind a pair; {@code margin} (TRL's, how much better the chosen response is,
 * from the votes' strengths) is null in datasets where nobody said how much better.
 */
record DatasetItem(Long comparisonId, JsonNode prompt, JsonNode chosen, JsonNode rejected, JsonNode messages,
                   String consensus, Double agreement, Integer votes, double weight, JsonNode rawVotes, Double margin) {

    DatasetItem(Long comparisonId, JsonNode prompt, JsonNode chosen, JsonNode rejected, JsonNode messages,
                String consensus, Double agreement, Integer votes, double weight, JsonNode rawVotes) {
        this(comparisonId, prompt, chosen, rejected, messages, consensus, agreement, votes, weight, rawVotes, null);
    }

    static DatasetItem sft(Long comparisonId, JsonNode messages) {
        return new DatasetItem(comparisonId, null, null, null, messages, null, null, null, 1.0, null);
    }

    /** The line this item exports as, in TRL's format; {@code weight} only where it is not 1, {@code margin} where known. */
    String exportLine(ObjectMapper json) {
        ObjectNode line = json.createObjectNode();
        if (messages != null) {
            line.set("messages", messages);
        } else {
            line.set("prompt", prompt);
            line.set("chosen", chosen);
            line.set("rejected", rejected);
            if (weight != 1.0) line.put("weight", weight);
            if (margin != null) line.put("margin", margin);
        }
        try {
            return json.writeValueAsString(line);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
