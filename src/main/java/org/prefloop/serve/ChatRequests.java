package org.prefloop.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.TextNode;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a chat completion body field by field, so that every refusal names the parameter, as
 * OpenAI does: malformed JSON, a wrong type, a value out of range, a message without a known
 * role, and a parameter the server does not implement (rather than ignoring it without a word).
 */
final class ChatRequests {
    static final int MAX_STOP_STRINGS = 4;
    /** OpenAI's bound on top_logprobs. */
    static final int MAX_TOP_LOGPROBS = 20;
    /** Choices one request may ask for: each is a sequence in the batch, so more would starve other clients. */
    static final int MAX_CHOICES = 16;
    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant");

    /** Parameters OpenAI clients send that change nothing here (or only at their default value, checked below). */
    private static final Set<String> IGNORED = Set.of("user", "store", "metadata", "service_tier", "parallel_tool_calls",
            "modalities", "reasoning_effort", "stream_options");

    /** Parameters that would change the answer and that this server does not implement. */
    private static final Map<String, String> UNSUPPORTED = Map.of(
            "tools", "tool calling is not supported",
            "functions", "function calling is not supported",
            "function_call", "function calling is not supported",
            "audio", "audio output is not supported",
            "prediction", "predicted outputs are not supported",
            "web_search_options", "web search is not supported");

    private ChatRequests() {
    }

    /** A /v1 body as a JSON object, or a 400 {@code invalid_json} naming where it broke (and the field it must carry). */
    static JsonNode object(String body, ObjectMapper json, String required) {
        JsonNode root;
        try {
            root = body == null || body.isBlank() ? null : json.readTree(body);
        } catch (JsonProcessingException e) {
            throw OpenAiException.invalid(null, "invalid_json", "We could not parse the JSON body of your request: "
                    + e.getOriginalMessage() + " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")");
        }
        if (root == null || !root.isObject()) {
            throw OpenAiException.invalid(null, "invalid_json", "The body must be a JSON object with '" + required + "'.");
        }
        return root;
    }

    static ChatCompletionRequest parse(String body, ObjectMapper json) {
        JsonNode root = object(body, json, "messages");
        for (Iterator<String> names = root.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            if (!KNOWN.contains(name) && !IGNORED.contains(name) && !UNSUPPORTED.containsKey(name)) {
                throw OpenAiException.invalid(name, "unknown_parameter", "Unrecognized request argument supplied: " + name);
            }
        }
        for (Map.Entry<String, String> u : UNSUPPORTED.entrySet()) {
            JsonNode v = root.get(u.getKey());
            boolean empty = v == null || v.isNull() || (v.isArray() && v.isEmpty());
            if (!empty) throw unsupported(u.getKey(), u.getValue());
        }
        JsonNode toolChoice = root.get("tool_choice");
        if (toolChoice != null && !toolChoice.isNull() && !(toolChoice.isTextual() && toolChoice.asText().equals("none"))) {
            throw unsupported("tool_choice", "tool calling is not supported");
        }
        boolean logprobs = Boolean.TRUE.equals(bool(root, "logprobs"));
        Integer top = integer(root, "top_logprobs");
        if (top != null && (top < 0 || top > MAX_TOP_LOGPROBS)) {
            throw OpenAiException.invalid("top_logprobs", "invalid_value", "'top_logprobs' must be between 0 and " + MAX_TOP_LOGPROBS + ", got " + top);
        }
        if (top != null && top > 0 && !logprobs) {
            throw OpenAiException.invalid("top_logprobs", "invalid_value", "'top_logprobs' needs 'logprobs' set to true.");
        }
        int n = choices(root);
        JsonNode format = root.get("response_format");
        if (format != null && !format.isNull() && !(format.isObject() && format.path("type").asText().equals("text"))) {
            throw unsupported("response_format", "only response_format {\"type\": \"text\"} is supported");
        }
        JsonNode bias = root.get("logit_bias");
        if (bias != null && !bias.isNull() && !(bias.isObject() && bias.isEmpty())) throw unsupported("logit_bias", "logit_bias is not supported");

        JsonNode model = root.get("model");
        if (model != null && !model.isNull() && !model.isTextual()) throw type("model", "a string");
        Float temperature = number(root, "temperature", 0, 2);
        Float topP = number(root, "top_p", 0, 1);
        if (topP != null && topP == 0f) throw OpenAiException.invalid("top_p", "invalid_value", "'top_p' must be above 0 and at most 1, got 0");
        Integer topK = integer(root, "top_k");
        if (topK != null && topK < -1) throw OpenAiException.invalid("top_k", "invalid_value", "'top_k' must be -1 (off), 0 (off) or positive, got " + topK);
        Float repetition = number(root, "repetition_penalty", 0, 100);
        if (repetition != null && repetition == 0f) throw OpenAiException.invalid("repetition_penalty", "invalid_value", "'repetition_penalty' must be above 0");
        Float frequency = number(root, "frequency_penalty", -2, 2);
        Float presence = number(root, "presence_penalty", -2, 2);
        Integer maxTokens = integer(root, "max_completion_tokens");
        String maxName = "max_completion_tokens";
        if (maxTokens == null) {
            maxTokens = integer(root, "max_tokens");
            maxName = "max_tokens";
        }
        if (maxTokens != null && maxTokens < 1) {
            throw OpenAiException.invalid(maxName, "invalid_value", "'" + maxName + "' must be at least 1, got " + maxTokens);
        }
        Long seed = null;
        JsonNode s = root.get("seed");
        if (s != null && !s.isNull()) {
            if (!s.isIntegralNumber() || !s.canConvertToLong()) throw type("seed", "an integer");
            seed = s.asLong();
        }
        Boolean stream = bool(root, "stream");
        Boolean ignoreEos = bool(root, "ignore_eos");
        boolean includeUsage = false;
        JsonNode options = root.get("stream_options");
        if (options != null && !options.isNull()) {
            if (!options.isObject()) throw type("stream_options", "an object");
            Boolean usage = bool(options, "include_usage", "stream_options.include_usage");
            includeUsage = Boolean.TRUE.equals(usage);
        }
        return new ChatCompletionRequest(model == null || model.isNull() ? null : model.asText(), messages(root.get("messages")),
                temperature, topP, topK == null || topK == -1 ? null : topK, repetition, frequency, presence, maxTokens,
                stop(root.get("stop")), seed, Boolean.TRUE.equals(stream), includeUsage, Boolean.TRUE.equals(ignoreEos),
                n, logprobs, top == null ? 0 : top);
    }

    private static final Set<String> KNOWN = Set.of("model", "messages", "temperature", "top_p", "top_k", "repetition_penalty",
            "frequency_penalty", "presence_penalty", "max_tokens", "max_completion_tokens", "stop", "seed", "stream", "n",
            "logprobs", "top_logprobs", "response_format", "logit_bias", "tool_choice", "ignore_eos");

    /** {@code n}: 1 by default, at most {@link #MAX_CHOICES} (each choice is a sequence in the batch). */
    static int choices(JsonNode root) {
        Integer n = integer(root, "n");
        if (n != null && (n < 1 || n > MAX_CHOICES)) {
            throw OpenAiException.invalid("n", "invalid_value", "'n' must be between 1 and " + MAX_CHOICES + ", got " + n);
        }
        return n == null ? 1 : n;
    }

    private static List<ChatCompletionRequest.Message> messages(JsonNode messages) {
        if (messages == null || messages.isNull()) {
            throw OpenAiException.invalid("messages", "missing_required_parameter", "Missing required parameter: 'messages'.");
        }
        if (!messages.isArray()) throw type("messages", "an array");
        if (messages.isEmpty()) throw OpenAiException.invalid("messages", "invalid_value", "'messages' must be a non-empty array.");
        List<ChatCompletionRequest.Message> out = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            String at = "messages[" + i + "]";
            if (!m.isObject()) throw type(at, "an object");
            JsonNode role = m.get("role");
            if (role == null || role.isNull()) throw OpenAiException.invalid(at + ".role", "missing_required_parameter", "Missing required parameter: '" + at + ".role'.");
            if (!role.isTextual()) throw type(at + ".role", "a string");
            String r = role.asText();
            if (r.equals("tool") || r.equals("function")) throw unsupported(at + ".role", "role '" + r + "' needs tool calling, which is not supported");
            if (!ROLES.contains(r)) {
                throw OpenAiException.invalid(at + ".role", "invalid_value", "Invalid value: '" + r + "'. Supported values are: 'system', 'developer', 'user' and 'assistant'.");
            }
            JsonNode toolCalls = m.get("tool_calls");
            if (toolCalls != null && !toolCalls.isNull() && !toolCalls.isEmpty()) throw unsupported(at + ".tool_calls", "tool calling is not supported");
            JsonNode content = m.get("content");
            if (content == null || content.isNull()) {
                if (!r.equals("assistant")) throw OpenAiException.invalid(at + ".content", "missing_required_parameter", "Missing required parameter: '" + at + ".content'.");
                content = TextNode.valueOf("");
            } else if (content.isArray()) {
                for (int j = 0; j < content.size(); j++) {
                    JsonNode part = content.get(j);
                    String pat = at + ".content[" + j + "]";
                    if (!part.isObject()) throw type(pat, "an object");
                    if (!part.path("type").asText().equals("text")) throw unsupported(pat + ".type", "only text content parts are supported");
                    if (!part.path("text").isTextual()) throw type(pat + ".text", "a string");
                }
            } else if (!content.isTextual()) {
                throw type(at + ".content", "a string or an array of content parts");
            }
            // the chat templates of open models know system, user and assistant; developer is OpenAI's new name for system
            out.add(new ChatCompletionRequest.Message(r.equals("developer") ? "system" : r, content));
        }
        return out;
    }

    static List<String> stop(JsonNode stop) {
        if (stop == null || stop.isNull()) return List.of();
        List<String> out = new ArrayList<>();
        if (stop.isTextual()) out.add(stop.asText());
        else if (stop.isArray()) {
            if (stop.size() > MAX_STOP_STRINGS) throw OpenAiException.invalid("stop", "invalid_value", "'stop' takes at most " + MAX_STOP_STRINGS + " strings");
            for (JsonNode s : stop) {
                if (!s.isTextual()) throw type("stop", "a string or an array of strings");
                out.add(s.asText());
            }
        } else throw type("stop", "a string or an array of strings");
        if (out.stream().anyMatch(String::isEmpty)) throw OpenAiException.invalid("stop", "invalid_value", "a stop string must not be empty");
        return out;
    }

    static Float number(JsonNode root, String name, double min, double max) {
        JsonNode v = root.get(name);
        if (v == null || v.isNull()) return null;
        if (!v.isNumber()) throw type(name, "a number");
        double d = v.asDouble();
        if (!(d >= min && d <= max)) {
            throw OpenAiException.invalid(name, "invalid_value", "'" + name + "' must be between " + fmt(min) + " and " + fmt(max) + ", got " + v);
        }
        return (float) d;
    }

    static Integer integer(JsonNode root, String name) {
        JsonNode v = root.get(name);
        if (v == null || v.isNull()) return null;
        if (!v.isIntegralNumber()) throw type(name, "an integer");
        if (!v.canConvertToInt()) throw OpenAiException.invalid(name, "invalid_value", "'" + name + "' is out of range: " + v);
        return v.asInt();
    }

    static Boolean bool(JsonNode root, String name) {
        return bool(root, name, name);
    }

    static Boolean bool(JsonNode root, String name, String param) {
        JsonNode v = root.get(name);
        if (v == null || v.isNull()) return null;
        if (!v.isBoolean()) throw type(param, "a boolean");
        return v.asBoolean();
    }

    private static String fmt(double d) {
        return d == Math.rint(d) ? String.valueOf((long) d) : String.valueOf(d);
    }

    static OpenAiException type(String param, String expected) {
        return OpenAiException.invalid(param, "invalid_type", "Invalid type for '" + param + "': expected " + expected + ".");
    }

    static OpenAiException unsupported(String param, String why) {
        return OpenAiException.invalid(param, "unsupported_parameter", "Unsupported parameter: '" + param + "': " + why + " by this server.");
    }
}
