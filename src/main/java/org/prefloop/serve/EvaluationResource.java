package org.prefloop.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.TextNode;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import io.quarkus.narayana.jta.QuarkusTransaction;
import org.prefloop.eval.HeldOutEvaluation;
import org.prefloop.identity.User;
import org.prefloop.model.Generator;
import org.prefloop.platform.ProblemException;
import org.prefloop.train.TrainingData;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * Held-out accuracy of a version on prompts with checkable answers: each line of the file is
 * {@code {"prompt": [messages], "answer": "..."}} (preference-data/synthetic/heldout.jsonl is
 * one); the version answers greedily and an answer counts when it matches exactly. Each
 * evaluation is kept, with every example's outcome, for the promotion gate
 * ({@code require=evaluation}, {@link org.prefloop.eval.EvaluationGate}).
 */
@Path("/api/evaluations")
@Produces(MediaType.APPLICATION_JSON)
@Consumes(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class EvaluationResource {
    @Inject
    Completions completions;
    @Inject
    org.prefloop.platform.FileRoots roots;

    public record Evaluation(long id, String model, int examples, int correct, double exactMatch, String fileSha256) {
    }

    @POST
    public Evaluation evaluate(JsonNode body, @Context HttpServerRequest httpRequest, @Context HttpServerResponse response) {
        BooleanSupplier hungUp = RequestJobs.watch(httpRequest, response, () -> { }); // nobody waits: the sequences leave
        if (body == null || !body.hasNonNull("file")) throw ProblemException.invalid("file", "file (a JSON Lines file of prompt and answer) is required");
        String given = body.get("file").asText();
        java.nio.file.Path file = roots.resolve("file", given); // confined: never a file outside the configured roots
        if (!Files.isRegularFile(file)) throw ProblemException.invalid("file", "no file at " + given);
        String model = completions.resolveName(body.path("model").asText(ModelsResource.PROMOTED_ALIAS));
        List<JsonNode> rows;
        String sha256;
        try {
            sha256 = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
            rows = TrainingData.readLines(file);
        } catch (IllegalArgumentException e) {
            throw ProblemException.invalid("file", e.getMessage().replace(file.toString(), given));
        } catch (java.io.IOException e) {
            throw ProblemException.invalid("file", "cannot read " + given + ": " + e.getMessage());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        List<List<ChatCompletionRequest.Message>> prompts = new ArrayList<>();
        List<String> answers = new ArrayList<>();
        for (JsonNode r : rows) {
            if (!r.has("prompt") || !r.get("prompt").isArray() || !r.hasNonNull("answer")) {
                throw ProblemException.invalid("file", "every line needs \"prompt\" (a list of messages) and \"answer\"");
            }
            List<ChatCompletionRequest.Message> messages = new ArrayList<>();
            r.get("prompt").forEach(m -> messages.add(new ChatCompletionRequest.Message(m.path("role").asText(), TextNode.valueOf(m.path("content").asText()))));
            prompts.add(messages);
            answers.add(r.get("answer").asText());
        }
        int maxTokens = (int) Fields.integer(body, "max_tokens", 32, 1, RoundResource.MAX_TOKENS);
        List<Generator.Completion> out = completions.complete(model, prompts, Generator.GenerationParams.greedy(maxTokens), "file", hungUp);
        int correct = 0;
        StringBuilder outcomes = new StringBuilder(answers.size());
        for (int i = 0; i < answers.size(); i++) {
            boolean right = out.get(i).text().strip().equals(answers.get(i));
            if (right) correct++;
            outcomes.append(right ? '1' : '0');
        }
        HeldOutEvaluation e = new HeldOutEvaluation();
        e.modelName = model;
        e.file = given;
        e.fileSha256 = sha256;
        e.method = HeldOutEvaluation.EXACT_MATCH;
        e.examples = answers.size();
        e.correct = correct;
        e.score = (double) correct / answers.size();
        e.outcomes = outcomes.toString();
        QuarkusTransaction.requiringNew().run(e::persist);
        return new Evaluation(e.id, model, e.examples, correct, e.score, sha256);
    }
}
