package org.prefloop.serve;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.prefloop.model.Generator;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Generation for the service's own use (the next round's comparisons, held-out evaluations):
 * the same batch scheduler the API uses, so these requests share batches with apps' requests.
 */
@ApplicationScoped
public class Completions {
    @Inject
    ModelHost host;
    @Inject
    BatchScheduler scheduler;

    /** The model a name resolves to now (a version, or the promoted alias); a 404 problem if none. */
    public String resolveName(String model) {
        return host.resolve(model).name();
    }

    /** One completion per conversation, all submitted at once so that they batch. */
    public List<Generator.Completion> complete(String model, List<List<ChatCompletionRequest.Message>> conversations, Generator.GenerationParams params) {
        ModelHost.Resolved resolved = host.resolve(model);
        List<CompletableFuture<Generator.Completion>> futures = new ArrayList<>();
        for (List<ChatCompletionRequest.Message> messages : conversations) {
            long[] prompt = resolved.base().tokenizer().encode(resolved.render(messages));
            CompletableFuture<Generator.Completion> done = new CompletableFuture<>();
            scheduler.submit(new BatchScheduler.Job(resolved, prompt, params, new BatchScheduler.Sink() {
                public void delta(String text) {
                }

                public void done(Generator.Completion completion) {
                    done.complete(completion);
                }

                public void failed(Throwable error) {
                    done.completeExceptionally(error);
                }
            }));
            futures.add(done);
        }
        return futures.stream().map(CompletableFuture::join).toList();
    }
}
