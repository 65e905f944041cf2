package org.prefloop.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.security.identity.SecurityIdentity;
import io.smallrye.common.annotation.Blocking;
import jakarta.annotation.security.PermitAll;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.prefloop.collect.ThumbEvent;
import org.prefloop.collect.ThumbPublisher;

import java.time.Instant;
import java.util.Map;
import java.util.UUID;

/**
 * An app's verdict on an answer /v1 gave: {@code POST /v1/feedback} with
 * {@code {"completion_id": "chatcmpl-...", "label": true}} (true: good, thumbs up). The answer,
 * its prompt and version come from the {@link CompletionLog}; the verdict goes to Kafka like a
 * judgment and is stored once (a later verdict on the same completion replaces it). 202 once the
 * broker has it. Errors in OpenAI's shape, naming the parameter.
 */
@Path("/v1/feedback")
@PermitAll // the bearer-key filter guards /v1
public class FeedbackResource {
    @Inject
    ObjectMapper json;
    @Inject
    CompletionLog log;
    @Inject
    ThumbPublisher publisher;
    @Inject
    SecurityIdentity identity;

    @POST
    @Blocking
    @Consumes(MediaType.WILDCARD)
    @Produces(MediaType.APPLICATION_JSON)
    public Response feedback(String body, @jakarta.ws.rs.core.Context HttpHeaders headers) {
        JsonNode tree;
        try {
            tree = json.readTree(body == null ? "" : body);
        } catch (java.io.IOException e) {
            return error(OpenAiException.invalid(null, "invalid_json", "The body is not valid JSON."));
        }
        if (tree == null || !tree.isObject()) return error(OpenAiException.invalid(null, "invalid_json", "The body must be a JSON object."));
        JsonNode id = tree.get("completion_id");
        if (id == null || !id.isTextual() || id.asText().isBlank()) {
            return error(OpenAiException.invalid("completion_id", "missing_required_parameter", "completion_id (the id /v1/chat/completions returned) is required."));
        }
        JsonNode label = tree.get("label");
        if (label == null || !label.isBoolean()) {
            return error(OpenAiException.invalid("label", "invalid_value", "label must be true (a good answer) or false (a bad one)."));
        }
        var entry = log.find(id.asText());
        if (entry.isEmpty()) {
            return error(new OpenAiException(404, "No completion with id '" + id.asText() + "' was answered here (or it was not kept).", "completion_id", "completion_not_found"));
        }
        CompletionLog.Entry e = entry.get();
        ThumbEvent event = new ThumbEvent(UUID.randomUUID(), "completion:" + e.id(), "v1", e.id(), e.model(), e.prompt(), e.completion(),
                label.asBoolean(), author(headers), Instant.now());
        try {
            publisher.publish(event);
        } catch (RuntimeException ex) {
            return error(new OpenAiException(503, "The feedback was not acknowledged by Kafka (" + ex.getMessage() + "); send it again.", null, null));
        }
        return Response.accepted(Map.of("object", "feedback", "completion_id", e.id(), "label", label.asBoolean(), "event_id", event.eventId().toString()))
                .type(MediaType.APPLICATION_JSON).build();
    }

    /** The API key's name, or the signed-in admin's. */
    private String author(HttpHeaders headers) {
        String header = headers.getHeaderString(HttpHeaders.AUTHORIZATION);
        if (header != null && header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            String secret = header.substring(7).trim();
            String name = QuarkusTransaction.requiringNew().call(() -> ApiKey.active(secret).map(k -> "key:" + k.name).orElse(null));
            if (name != null) return name;
        }
        return identity.isAnonymous() ? "unknown" : identity.getPrincipal().getName();
    }

    private static Response error(OpenAiException e) {
        return ChatCompletionsResource.openAiError(e);
    }
}
