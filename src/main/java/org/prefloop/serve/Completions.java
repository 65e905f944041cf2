package org.prefloop.serve;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.prefloop.model.Generator;
import org.prefloop.platform.ProblemException;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.function.BooleanSupplier;

/**
 * Generation for the service's own use (the next round's comparisons, held-out evaluations):
 * the same batch scheduler the API uses, so these requests share batches with apps' requests;
 * with a serving backend ({@link ServingBackend}), the engine.
 */
@ApplicationScoped
public class Completions {
    @Inject
    ModelHost host;
    @Inject
    BatchScheduler scheduler;
    @Inject
    ServingBackend backend;

    /** The model a name resolves to now (a version, or the promoted alias); a 404 problem if none. */
    public String resolveName(String model) {
        if (backend.enabled()) return backend.version(model).name; // the model is on the engine, not here
        return host.resolve(model).name();
    }

    /**
     * One completion per conversation, all submitted at once so that they batch. Every prompt plus
     * {@code max_tokens} must fit the model's context, checked before any is scheduled; a
     * conversation that does not is refused as a 400 problem naming {@code field} (where the
     * prompts came from) and the numbers.
     */
    public List<Generator.Completion> complete(String model, List<List<ChatCompletionRequest.Message>> conversations,
                                               Generator.GenerationParams params, String field) {
        return complete(model, conversations, params, field, () -> false);
    }

    /**
     * {@link #complete(String, List, Generator.GenerationParams, String)} for a client that may
     * hang up: once {@code hungUp} is true, the conversations not generated yet leave the queue
     * and the batch, and a 503 problem ends the request nobody waits for any more.
     */
    public List<Generator.Completion> complete(String model, List<List<ChatCompletionRequest.Message>> conversations,
                                               Generator.GenerationParams params, String field, BooleanSupplier hungUp) {
        if (backend.enabled()) return backend.complete(model, conversations, params, field, hungUp);
        ModelHost.Resolved resolved = host.resolve(model);
        int context = resolved.base().model().config().maxPositionEmbeddings();
        List<long[]> prompts = new ArrayList<>();
        for (int i = 0; i < conversations.size(); i++) {
            long[] prompt = resolved.base().tokenizer().encode(resolved.render(conversations.get(i)));
            if (prompt.length + params.maxTokens() > context) {
                throw ProblemException.badRequest(field, "context_length_exceeded: prompt " + i + " has " + prompt.length
                        + " tokens and max_tokens is " + params.maxTokens() + ", together " + (prompt.length + params.maxTokens())
                        + ", over the model's context of " + context + " tokens");
            }
            prompts.add(prompt);
        }
        RequestJobs jobs = new RequestJobs(hungUp);
        jobs.submit(scheduler, prompts.stream().map(p -> new RequestJobs.Sequence(resolved, p, params)).toList());
        try {
            return jobs.all().join().stream().map(RequestJobs.Finished::completion).toList();
        } catch (CompletionException e) {
            if (e.getCause() instanceof CancellationException) throw new ProblemException(503, field, "the client went away before the answer");
            throw e;
        }
    }
}
