package org.prefloop.collect;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.security.identity.SecurityIdentity;
import io.smallrye.reactive.messaging.MutinyEmitter;
import io.smallrye.reactive.messaging.kafka.Record;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.eclipse.microprofile.reactive.messaging.Channel;
import org.prefloop.identity.User;
import org.prefloop.platform.BoundedBody;
import org.prefloop.platform.ProblemException;

import java.io.InputStream;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;

/**
 * Takes a judgment, checks it, and hands it to Kafka. The answer is 202 only after the broker
 * acknowledged the event to all in-sync replicas (acks=all, idempotent producer): from then on
 * the ingest consumer will store it, once, whatever crashes in between. Created at start, so its
 * counter is exported (at 0) before the first judgment and a rate over it is defined from the start.
 */
@jakarta.inject.Singleton
@io.quarkus.runtime.Startup
@Path("/api/preferences")
public class PreferenceResource {
    static final int MAX_BODY = 256 * 1024;

    @Inject
    SecurityIdentity identity;

    @Inject
    ObjectMapper json;

    @Inject
    TaskQueue tasks;

    @Inject
    @Channel("preferences-out")
    MutinyEmitter<Record<String, String>> preferences;

    private final Counter accepted;

    @Inject
    PreferenceResource(MeterRegistry registry) {
        this.accepted = Counter.builder("prefloop.preferences.accepted")
                .description("judgments acknowledged by Kafka and answered 202").register(registry);
    }

    @POST
    @Consumes(MediaType.WILDCARD)
    @Produces(MediaType.APPLICATION_JSON)
    @RolesAllowed({User.ANNOTATOR, User.ADMIN})
    public Response submit(InputStream body) {
        byte[] bytes = BoundedBody.read(body, MAX_BODY);
        JsonNode tree;
        try {
            tree = json.readTree(bytes);
        } catch (java.io.IOException e) {
            throw ProblemException.badRequest(null, "malformed JSON: " + firstLine(e.getMessage()));
        }
        PreferenceInput input = PreferenceInput.from(tree);
        String me = identity.getPrincipal().getName();
        if (input.annotator() != null && !input.annotator().equals(me)) {
            throw new ProblemException(403, "annotator", "you are signed in as '" + me + "' and cannot submit as '" + input.annotator() + "'");
        }
        if (Comparison.findById(input.comparisonId()) == null) {
            throw ProblemException.notFound("comparisonId", "comparison " + input.comparisonId() + " does not exist");
        }
        tasks.claim(input.comparisonId(), me, input.eventId());
        PreferenceEvent event = new PreferenceEvent(input.eventId(), input.comparisonId(), me, input.choice(),
                input.rationale(), input.timeSpentMs(), Instant.now(), null);
        String payload;
        try {
            payload = json.writeValueAsString(event);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        try {
            preferences.send(Record.of(String.valueOf(event.comparisonId()), payload)).await().atMost(Duration.ofSeconds(30));
        } catch (RuntimeException e) {
            // Not acknowledged: the client retries with the same event id, which the store dedupes.
            // The claim stays: the send may have landed, and the retry with the same event id passes it.
            throw new ProblemException(503, null, "the event was not acknowledged by Kafka (" + e.getMessage() + "); retry with the same eventId");
        }
        tasks.answered(event.comparisonId(), me, event.eventId());
        accepted.increment();
        return Response.accepted(Map.of("eventId", event.eventId())).build();
    }

    private static String firstLine(String message) {
        if (message == null) return "";
        int nl = message.indexOf('\n');
        return nl < 0 ? message : message.substring(0, nl);
    }
}
