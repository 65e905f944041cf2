package org.prefloop.serve;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;

/**
 * The body of OpenAI's {@code POST /v1/chat/completions} after {@link ChatRequests#parse} checked
 * it: every field PrefLoop honours, typed; null where the client left it out.
 * {@code top_k}, {@code repetition_penalty} and {@code ignore_eos} are vLLM's extensions, which
 * PrefLoop honours too. {@code n} is 1 unless asked; {@code topLogprobs} is 0 unless asked (and
 * only with {@code logprobs}).
 */
public record ChatCompletionRequest(
        String model,
        List<Message> messages,
        Float temperature,
        Float topP,
        Integer topK,
        Float repetitionPenalty,
        Float frequencyPenalty,
        Float presencePenalty,
        Integer maxTokens,
        List<String> stop,
        Long seed,
        boolean stream,
        boolean includeUsage,
        boolean ignoreEos,
        int n,
        boolean logprobs,
        int topLogprobs) {

    /** Alternatives per token the sampler should report: -1 without {@code logprobs}. */
    int logprobAlternatives() {
        return logprobs ? topLogprobs : -1;
    }

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
}
