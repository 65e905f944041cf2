package org.prefloop.collect;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.runtime.LaunchMode;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import org.eclipse.microprofile.config.ConfigProvider;
import org.prefloop.identity.User;
import org.prefloop.platform.KafkaClients;
import org.prefloop.platform.ProblemException;
import org.prefloop.platform.Settings;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

/**
 * An LLM judge over the configured OpenAI-compatible endpoint ({@code PREFLOOP_JUDGE_URL}; by
 * default this service's own {@code /v1}). Its labels travel the same topic as people's, marked
 * with the judge's name {@code llm:MODEL}; the quality page compares them with people's, and a
 * dataset takes them only above the agreement it asks for.
 */
@Path("/api/judges/llm")
@Produces(MediaType.APPLICATION_JSON)
@Consumes(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class LlmJudgeResource {
    @Inject
    KafkaClients kafka;
    @Inject
    ObjectMapper json;
    @Inject
    Settings settings;

    public record LlmJudgeView(String judge, int judged, int decisive, int ties) {
    }

    /**
     * Body: {@code {"model": "...", "rubric": "...", "apiKey": "...", "comparisonIds": [...]}} or
     * {@code "source": "round"} instead of the ids. The rubric is the judge's system prompt.
     */
    @POST
    public LlmJudgeView judge(JsonNode body) throws Exception {
        if (body == null || !body.hasNonNull("model") || body.get("model").asText().isBlank()) {
            throw ProblemException.invalid("model", "name the model that judges (a /v1 model id of the judge endpoint)");
        }
        String model = body.get("model").asText();
        String rubric = body.hasNonNull("rubric") ? body.get("rubric").asText() : null;
        if (rubric != null && rubric.length() > 8_000) throw ProblemException.invalid("rubric", "at most 8000 characters");
        String apiKey = body.hasNonNull("apiKey") ? body.get("apiKey").asText() : null;
        List<Comparison> targets = QuarkusTransaction.requiringNew().call(() -> {
            if (body.has("comparisonIds") && body.get("comparisonIds").isArray()) {
                List<Long> ids = new ArrayList<>();
                body.get("comparisonIds").forEach(n -> ids.add(n.asLong()));
                return Comparison.<Comparison>list("id in ?1", ids);
            }
            if (body.hasNonNull("source")) return Comparison.<Comparison>list("source", body.get("source").asText());
            throw ProblemException.invalid("comparisonIds", "give comparisonIds or a source");
        });
        LlmJudge judge = LlmJudge.openAi(endpoint(), model, apiKey, rubric, json);
        String name = "llm:" + model;
        int decisive = 0, ties = 0;
        for (Comparison c : targets) {
            LlmJudge.Verdict v;
            try {
                v = judge.judge(c.promptMessages(), c.responseA, c.responseB);
            } catch (LlmJudge.JudgeUnavailableException e) {
                throw new ProblemException(502, "judge", e.getMessage());
            }
            if (v.consistent()) decisive++;
            else ties++;
            // one label per (judge, rubric, comparison): judging again stores nothing new
            UUID eventId = UUID.nameUUIDFromBytes((name + "/" + (rubric == null ? "" : rubric) + "/" + c.id).getBytes(StandardCharsets.UTF_8));
            String rationale = "in order: " + v.answerInOrder().strip() + " | swapped: " + v.answerSwapped().strip();
            PreferenceEvent e = new PreferenceEvent(eventId, c.id, name, v.choice(), rationale, null, Instant.now(), name);
            kafka.send(PreferenceEvent.TOPIC, String.valueOf(c.id), json.writeValueAsString(e));
        }
        return new LlmJudgeView(name, targets.size(), decisive, ties);
    }

    /** The configured judge endpoint, or this process's own /v1 on the port it actually listens on. */
    URI endpoint() {
        Optional<String> configured = settings.judge().url();
        if (configured.isPresent() && !configured.get().isBlank()) return URI.create(configured.get());
        String portKey = LaunchMode.current() == LaunchMode.TEST ? "quarkus.http.test-port" : "quarkus.http.port";
        int port = ConfigProvider.getConfig().getOptionalValue(portKey, Integer.class).orElse(8080);
        return URI.create("http://127.0.0.1:" + port + "/v1");
    }
}
