package org.prefloop.collect;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import org.prefloop.identity.User;
import org.prefloop.platform.KafkaClients;
import org.prefloop.platform.ProblemException;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * Judges that are not people. The reversal checker judges comparisons of the synthetic task by
 * computing the right answer; its judgments go through the same topic and store as human ones,
 * marked with {@code judge}, with an event id derived from (judge, comparison) so judging twice
 * stores once. Datasets can include or exclude judge labels when they are frozen.
 */
@Path("/api/judges")
@Produces(MediaType.APPLICATION_JSON)
@Consumes(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class JudgeResource {
    @Inject
    KafkaClients kafka;
    @Inject
    ObjectMapper json;

    public record JudgeView(String judge, int judged, int notApplicable) {
    }

    /** Body: {@code {"comparisonIds": [...]}} or {@code {"source": "round"}} (every comparison from that source). */
    @POST
    @Path("/reverse")
    public JudgeView reverse(JsonNode body) throws Exception {
        List<Comparison> targets = QuarkusTransaction.requiringNew().call(() -> {
            if (body != null && body.has("comparisonIds")) {
                List<Long> ids = new ArrayList<>();
                if (!body.get("comparisonIds").isArray()) throw ProblemException.invalid("comparisonIds", "comparisonIds is a list of numbers");
                for (JsonNode n : body.get("comparisonIds")) {
                    if (!n.isIntegralNumber()) throw ProblemException.invalid("comparisonIds", "comparisonIds is a list of numbers");
                    ids.add(n.asLong());
                }
                if (ids.isEmpty()) throw ProblemException.invalid("comparisonIds", "comparisonIds is empty");
                return Comparison.<Comparison>list("id in ?1", ids);
            }
            if (body != null && body.hasNonNull("source")) return Comparison.<Comparison>list("source", body.get("source").asText());
            throw ProblemException.invalid("comparisonIds", "give comparisonIds or a source");
        });
        if (targets.isEmpty() && body.has("comparisonIds")) {
            throw ProblemException.notFound("comparisonIds", "none of these comparisons exists");
        }
        if (targets.isEmpty()) {
            throw ProblemException.notFound("source", "no comparison has the source '" + body.get("source").asText() + "'");
        }
        int judged = 0, skipped = 0;
        for (Comparison c : targets) {
            List<ChatMessage> prompt = c.promptMessages();
            String lastUser = prompt.stream().filter(m -> m.role().equals("user")).reduce((x, y) -> y).map(ChatMessage::content).orElse("");
            var expected = ReverseChecker.expected(lastUser);
            if (expected.isEmpty()) {
                skipped++;
                continue;
            }
            Choice choice = Choice.parse(ReverseChecker.verdict(expected.get(), c.responseA, c.responseB));
            UUID eventId = UUID.nameUUIDFromBytes((ReverseChecker.NAME + "/" + c.id).getBytes(StandardCharsets.UTF_8));
            PreferenceEvent e = new PreferenceEvent(eventId, c.id, ReverseChecker.NAME, choice, "expected " + expected.get(), null,
                    Instant.now(), ReverseChecker.NAME);
            kafka.send(PreferenceEvent.TOPIC, String.valueOf(c.id), json.writeValueAsString(e));
            judged++;
        }
        return new JudgeView(ReverseChecker.NAME, judged, skipped);
    }
}
