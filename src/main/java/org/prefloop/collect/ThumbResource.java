package org.prefloop.collect;

import com.fasterxml.jackson.databind.JsonNode;
import io.quarkus.security.identity.SecurityIdentity;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.prefloop.identity.User;
import org.prefloop.platform.ProblemException;

import java.time.Instant;
import java.util.Map;
import java.util.UUID;

/**
 * An annotator's thumbs up or down on one answer of a comparison: {@code {"eventId", "comparisonId",
 * "side": "A"|"B", "label": true|false}}. It travels like an app's feedback (Kafka {@code feedback},
 * stored once); one verdict per person per answer, a later one replacing it.
 */
@Path("/api/thumbs")
public class ThumbResource {
    @Inject
    SecurityIdentity identity;

    @Inject
    ThumbPublisher publisher;

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    @RolesAllowed({User.ANNOTATOR, User.ADMIN})
    public Response thumb(JsonNode body) {
        if (body == null || !body.isObject()) throw ProblemException.badRequest(null, "a JSON object is required");
        UUID eventId;
        try {
            eventId = UUID.fromString(body.path("eventId").asText(""));
        } catch (IllegalArgumentException e) {
            throw ProblemException.invalid("eventId", "eventId must be a UUID (the client's, so that a retry is not stored twice)");
        }
        if (!body.path("comparisonId").canConvertToLong()) throw ProblemException.invalid("comparisonId", "comparisonId must be a number");
        String side = body.path("side").asText("");
        if (!side.equals("A") && !side.equals("B")) throw ProblemException.invalid("side", "side must be A or B");
        if (!body.path("label").isBoolean()) throw ProblemException.invalid("label", "label must be true (thumbs up) or false (thumbs down)");
        long id = body.get("comparisonId").asLong();
        Comparison c = Comparison.findById(id);
        if (c == null) throw ProblemException.notFound("comparisonId", "comparison " + id + " does not exist");
        String me = identity.getPrincipal().getName();
        boolean a = side.equals("A");
        ThumbEvent event = new ThumbEvent(eventId, "comparison:" + id + ":" + side + ":" + me, "annotator", null,
                a ? c.versionA : c.versionB, c.prompt, a ? c.responseA : c.responseB, body.get("label").asBoolean(), me, Instant.now());
        try {
            publisher.publish(event);
        } catch (RuntimeException e) {
            throw new ProblemException(503, null, "the thumbs were not acknowledged by Kafka (" + e.getMessage() + "); retry with the same eventId");
        }
        return Response.accepted(Map.of("eventId", eventId.toString())).build();
    }
}
