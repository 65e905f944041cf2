package org.prefloop.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * Reads a legacy completions body field by field, every refusal naming the parameter, as
 * {@link ChatRequests} does for chat (whose checks of the shared sampling fields it uses).
 */
final class CompletionRequests {
    /** OpenAI's default for the legacy endpoint (chat's default is what remains of the context). */
    static final int DEFAULT_MAX_TOKENS = 16;
    /** Prompts one request may carry: scoring scripts send batches, each is one forward pass. */
    static final int MAX_PROMPTS = 64;

    private static final Set<String> KNOWN = Set.of("model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "n", "stream",
            "stream_options", "logprobs", "echo", "stop", "presence_penalty", "frequency_penalty", "repetition_penalty", "seed",
            "ignore_eos", "best_of", "suffix", "logit_bias", "user");

    private CompletionRequests() {
    }

    static CompletionRequest parse(String body, ObjectMapper json) {
        JsonNode root = ChatRequests.object(body, json, "prompt");
        for (Iterator<String> names = root.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            if (!KNOWN.contains(name)) throw OpenAiException.invalid(name, "unknown_parameter", "Unrecognized request argument supplied: " + name);
        }
        JsonNode suffix = root.get("suffix");
        if (suffix != null && !suffix.isNull() && !(suffix.isTextual() && suffix.asText().isEmpty())) {
            throw ChatRequests.unsupported("suffix", "insertion (suffix) is not supported");
        }
        JsonNode bias = root.get("logit_bias");
        if (bias != null && !bias.isNull() && !(bias.isObject() && bias.isEmpty())) throw ChatRequests.unsupported("logit_bias", "logit_bias is not supported");
        JsonNode user = root.get("user");
        if (user != null && !user.isNull() && !user.isTextual()) throw ChatRequests.type("user", "a string");

        Integer maxTokens = ChatRequests.integer(root, "max_tokens");
        if (maxTokens != null && maxTokens < 0) throw OpenAiException.invalid("max_tokens", "invalid_value", "'max_tokens' must be at least 0, got " + maxTokens);
        int max = maxTokens == null ? DEFAULT_MAX_TOKENS : maxTokens;
        // the sampling fields are chat's, checked by chat's parser on a copy with a stand-in message
        ObjectNode shared = root.deepCopy();
        for (String own : List.of("prompt", "max_tokens", "logprobs", "echo", "best_of", "suffix", "logit_bias", "user")) shared.remove(own);
        if (max > 0) shared.put("max_tokens", max);
        shared.set("messages", json.createArrayNode().add(json.createObjectNode().put("role", "user").put("content", "")));
        ChatCompletionRequest settings = ChatRequests.parse(shared.toString(), json);

        Integer logprobs = ChatRequests.integer(root, "logprobs");
        if (logprobs != null && (logprobs < 0 || logprobs > ChatRequests.MAX_TOP_LOGPROBS)) {
            throw OpenAiException.invalid("logprobs", "invalid_value", "'logprobs' must be between 0 and " + ChatRequests.MAX_TOP_LOGPROBS + ", got " + logprobs);
        }
        Boolean echo = ChatRequests.bool(root, "echo");
        Integer bestOf = ChatRequests.integer(root, "best_of");
        if (bestOf != null && bestOf != settings.n()) {
            throw ChatRequests.unsupported("best_of", "best_of other than n (choosing among extra candidates) is not supported");
        }
        List<CompletionRequest.Prompt> prompts = prompts(root.get("prompt"));
        if (max > 0 && prompts.size() * settings.n() > ChatRequests.MAX_CHOICES) {
            throw OpenAiException.invalid("n", "invalid_value", "prompts times 'n' is " + prompts.size() * settings.n()
                    + ", over the " + ChatRequests.MAX_CHOICES + " sequences one request may generate");
        }
        return new CompletionRequest(settings.model(), prompts, max, Boolean.TRUE.equals(echo), logprobs, settings);
    }

    /** A string, a list of strings, a list of token ids, or a list of lists of token ids (OpenAI's four forms). */
    private static List<CompletionRequest.Prompt> prompts(JsonNode prompt) {
        if (prompt == null || prompt.isNull()) {
            throw OpenAiException.invalid("prompt", "missing_required_parameter", "Missing required parameter: 'prompt'.");
        }
        List<CompletionRequest.Prompt> out = new ArrayList<>();
        if (prompt.isTextual()) {
            out.add(text(prompt, "prompt"));
        } else if (prompt.isArray() && !prompt.isEmpty() && prompt.get(0).isIntegralNumber()) {
            out.add(ids(prompt, "prompt"));
        } else if (prompt.isArray()) {
            if (prompt.isEmpty()) throw OpenAiException.invalid("prompt", "invalid_value", "'prompt' must not be empty.");
            if (prompt.size() > MAX_PROMPTS) {
                throw OpenAiException.invalid("prompt", "invalid_value", "'prompt' takes at most " + MAX_PROMPTS + " prompts, got " + prompt.size());
            }
            for (int i = 0; i < prompt.size(); i++) {
                JsonNode p = prompt.get(i);
                String at = "prompt[" + i + "]";
                if (p.isTextual()) out.add(text(p, at));
                else if (p.isArray()) out.add(ids(p, at));
                else throw ChatRequests.type(at, "a string or an array of token ids");
            }
        } else {
            throw ChatRequests.type("prompt", "a string, an array of strings, or an array of token ids");
        }
        return out;
    }

    private static CompletionRequest.Prompt text(JsonNode p, String at) {
        if (p.asText().isEmpty()) throw OpenAiException.invalid(at, "invalid_value", "'" + at + "' must not be empty.");
        return new CompletionRequest.Prompt(p.asText(), null);
    }

    private static CompletionRequest.Prompt ids(JsonNode p, String at) {
        if (p.isEmpty()) throw OpenAiException.invalid(at, "invalid_value", "'" + at + "' must not be empty.");
        long[] ids = new long[p.size()];
        for (int i = 0; i < p.size(); i++) {
            JsonNode id = p.get(i);
            if (!id.isIntegralNumber() || !id.canConvertToLong()) throw ChatRequests.type(at + "[" + i + "]", "a token id (integer)");
            ids[i] = id.asLong();
        }
        return new CompletionRequest.Prompt(null, ids);
    }
}
