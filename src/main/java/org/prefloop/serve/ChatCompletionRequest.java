package org.prefloop.serve;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;

/** The body of OpenAI's {@code POST /v1/chat/completions}, the fields PrefLoop honours. */
@JsonIgnoreProperties(ignoreUnknown = true)
public record ChatCompletionRequest(
        String model,
        List<Message> messages,
        Float temperature,
        @JsonProperty("top_p") Float topP,
        @JsonProperty("max_tokens") Integer maxTokens,
        @JsonProperty("max_completion_tokens") Integer maxCompletionTokens,
        /** a string or a list of strings */
        JsonNode stop,
        Long seed,
        Boolean stream,
        @JsonProperty("stream_options") StreamOptions streamOptions) {

    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Message(String role, JsonNode content) {
        /** OpenAI lets content be a string or a list of parts; text parts are joined. */
        public String text() {
            if (content == null || content.isNull()) return "";
            if (content.isTextual()) return content.asText();
            StringBuilder b = new StringBuilder();
            for (JsonNode part : content) if (part.has("text")) b.append(part.get("text").asText());
            return b.toString();
        }
    }

    @JsonIgnoreProperties(ignoreUnknown = true)
    public record StreamOptions(@JsonProperty("include_usage") Boolean includeUsage) {
    }

    boolean streaming() {
        return Boolean.TRUE.equals(stream);
    }

    int maxTokensOr(int fallback) {
        if (maxCompletionTokens != null) return maxCompletionTokens;
        return maxTokens == null ? fallback : maxTokens;
    }

    List<String> stopStrings() {
        if (stop == null || stop.isNull()) return List.of();
        if (stop.isTextual()) return List.of(stop.asText());
        java.util.ArrayList<String> out = new java.util.ArrayList<>();
        stop.forEach(s -> out.add(s.asText()));
        return out;
    }
}
