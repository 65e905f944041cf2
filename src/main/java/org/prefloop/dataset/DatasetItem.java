package org.prefloop.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One example of a frozen dataset. Preference items hold prompt, chosen and rejected as the
 * JSON values TRL reads (strings for the plain format, message lists for the conversational
 * one); SFT items hold the conversation; KTO items (thumbs) hold prompt, completion and label,
 * TRL's unpaired form. Consensus, agreement, votes and the raw votes say which judgments stand
 * behind a pair; {@code margin} (TRL's, how much better the chosen response is, from the votes'
 * strengths) is null in datasets where nobody said how much better.
 */
record DatasetItem(Long comparisonId, JsonNode prompt, JsonNode chosen, JsonNode rejected, JsonNode messages,
                   String consensus, Double agreement, Integer votes, double weight, JsonNode rawVotes, Double margin,
                   JsonNode completion, Boolean label) {

    DatasetItem(Long comparisonId, JsonNode prompt, JsonNode chosen, JsonNode rejected, JsonNode messages,
                String consensus, Double agreement, Integer votes, double weight, JsonNode rawVotes, Double margin) {
        this(comparisonId, prompt, chosen, rejected, messages, consensus, agreement, votes, weight, rawVotes, margin, null, null);
    }

    DatasetItem(Long comparisonId, JsonNode prompt, JsonNode chosen, JsonNode rejected, JsonNode messages,
                String consensus, Double agreement, Integer votes, double weight, JsonNode rawVotes) {
        this(comparisonId, prompt, chosen, rejected, messages, consensus, agreement, votes, weight, rawVotes, null, null, null);
    }

    /** A thumbs-up (label true) or thumbs-down example: TRL's unpaired format. */
    static DatasetItem unpaired(JsonNode prompt, JsonNode completion, boolean label) {
        return new DatasetItem(null, prompt, null, null, null, null, null, null, 1.0, null, null, completion, label);
    }

    static DatasetItem sft(Long comparisonId, JsonNode messages) {
        return new DatasetItem(comparisonId, null, null, null, messages, null, null, null, 1.0, null);
    }

    /** The line this item exports as, in TRL's format; {@code weight} only where it is not 1, {@code margin} where known. */
    String exportLine(ObjectMapper json) {
        ObjectNode line = json.createObjectNode();
        if (messages != null) {
            line.set("messages", messages);
        } else if (label != null) {
            line.set("prompt", prompt);
            line.set("completion", completion);
            line.put("label", label);
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
