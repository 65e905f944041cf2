package org.prefloop.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;

import java.util.List;
import java.util.Optional;

/**
 * What /v1 answered, by completion id: the prompt, the answer and the version that wrote it, so
 * that an app's later feedback on that id ({@link FeedbackResource}) becomes a thumbs example.
 * Written before the answer is sent, off the batch scheduler's thread.
 */
@ApplicationScoped
public class CompletionLog {
    private static final Logger LOG = Logger.getLogger(CompletionLog.class);

    @Inject
    ObjectMapper json;

    public record Entry(String id, String model, String prompt, String completion) {
    }

    /** Remembers one answer; a failure is logged, never fails the answer (its feedback will then be refused as unknown). */
    public void remember(String id, String model, List<ChatCompletionRequest.Message> messages, String completion) {
        try {
            CompletionLogEntry e = new CompletionLogEntry();
            e.id = id;
            e.modelName = model;
            e.prompt = json.writeValueAsString(messages);
            e.completion = completion;
            // its own transaction: the answer is not part of whatever the caller is doing
            QuarkusTransaction.requiringNew().run(e::persist);
        } catch (JsonProcessingException | RuntimeException e) {
            LOG.warnf("could not remember completion %s: %s", id, e.getMessage());
        }
    }

    public Optional<Entry> find(String id) {
        return QuarkusTransaction.joiningExisting().call(() -> CompletionLogEntry.<CompletionLogEntry>findByIdOptional(id)
                .map(e -> new Entry(e.id, e.modelName, e.prompt, e.completion)));
    }
}
