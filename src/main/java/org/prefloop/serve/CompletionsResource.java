package org.prefloop.serve;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.smallrye.common.annotation.Blocking;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import jakarta.annotation.security.PermitAll;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.StreamingOutput;
import org.prefloop.model.Generator;
import org.prefloop.model.ProjectionHook;
import org.prefloop.model.PromptLogprobs;
import org.prefloop.model.TextTokenizer;
import org.prefloop.model.TokenLogprobs;
import org.prefloop.platform.ProblemException;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * OpenAI's legacy {@code POST /v1/completions}: a plain prompt (no chat template), or several,
 * continued by the served model. With {@code echo} the answer starts with the prompt, and with
 * {@code logprobs} it carries the log-probability of every token, the prompt's included (the
 * first one has none): {@code max_tokens: 0} with both scores a given text without generating,
 * which is how judges and scoring scripts read the log-probability of an answer. Choices are
 * ordered prompt by prompt, {@code n} for each. Generation shares the batch scheduler with chat;
 * scoring runs on the request's thread, holding the model one chunk of the text at a time.
 */
@Path("/v1/completions")
@PermitAll
public class CompletionsResource {
    @Inject
    ModelHost host;

    @Inject
    BatchScheduler scheduler;

    @Inject
    ObjectMapper json;

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Choice(String text, int index, Logprobs.Legacy logprobs, String finish_reason) {
    }

    @JsonInclude(JsonInclude.Include.NON_NULL)
    record Body(String id, String object, long created, String model, List<Choice> choices, ChatCompletionChunks.Usage usage) {
    }

    /**
     * A prompt as the model sees it: its ids, the text an echo shows, how many leading ids that
     * text does not show (a BOS the tokenizer adds), and (when echo asks for logprobs) its scores.
     */
    private record Prepared(long[] ids, String text, int unshown, List<TokenLogprobs> scores) {
    }

    private final Counter tokens;

    @Inject
    CompletionsResource(MeterRegistry registry) {
        tokens = Counter.builder("prefloop.serve.tokens").description("completion tokens generated").register(registry);
    }

    @POST
    @Blocking // resolving the model reads the registry, and scoring runs the model here
    @Consumes(MediaType.WILDCARD) // read as text, so that malformed JSON gets OpenAI's answer
    public CompletionStage<Response> complete(String body, @Context HttpServerResponse response, @Context HttpServerRequest httpRequest) {
        CompletionRequest request;
        ModelHost.Resolved model;
        List<Prepared> prompts = new ArrayList<>();
        Generator.GenerationParams params = null;
        try {
            request = CompletionRequests.parse(body, json);
            try {
                model = host.resolve(request.model());
            } catch (ProblemException e) {
                throw new OpenAiException(e.status(), e.getMessage(), e.field(), e.status() == 404 ? "model_not_found" : null);
            }
            TextTokenizer tokenizer = model.base().tokenizer();
            int context = model.base().model().config().maxPositionEmbeddings();
            int vocab = model.base().model().config().vocabSize();
            for (int i = 0; i < request.prompts().size(); i++) {
                CompletionRequest.Prompt p = request.prompts().get(i);
                String param = request.prompts().size() == 1 ? "prompt" : "prompt[" + i + "]";
                long[] ids = p.text() != null ? tokenizer.encode(p.text()) : p.ids();
                if (ids.length == 0) throw OpenAiException.invalid(param, "invalid_value", "'" + param + "' has no tokens.");
                for (long id : ids) {
                    if (id < 0 || id >= vocab) {
                        throw OpenAiException.invalid(param, "invalid_value", "'" + param + "' has token id " + id + ", outside the vocabulary of " + vocab);
                    }
                }
                if (request.maxTokens() > 0) {
                    params = ChatCompletionsResource.params(request.settings(), ids.length, context, param, "prompt");
                } else if (ids.length > context) {
                    throw OpenAiException.invalid(param, "context_length_exceeded", "This model's maximum context length is " + context
                            + " tokens. However, your prompt resulted in " + ids.length + " tokens. Please reduce the length of the prompt.");
                }
                int unshown = p.text() != null ? ids.length - tokenizer.encodeContinuation(p.text()).length : 0;
                prompts.add(new Prepared(ids, p.text() != null ? p.text() : tokenizer.decode(ids), Math.max(0, unshown), null));
            }
        } catch (OpenAiException e) {
            return CompletableFuture.completedFuture(ChatCompletionsResource.openAiError(e));
        }
        if (request.echo() && request.logprobs() != null) {
            for (int i = 0; i < prompts.size(); i++) prompts.set(i, scored(model, prompts.get(i), request.logprobs()));
        }
        String id = "cmpl-" + UUID.randomUUID().toString().replace("-", "");
        long created = System.currentTimeMillis() / 1000;
        int n = request.settings().n();
        int promptTokens = prompts.stream().mapToInt(p -> p.ids().length).sum();
        RequestJobs jobs = new RequestJobs(httpRequest, response, tokens);
        if (request.maxTokens() > 0) {
            Long seed = RequestJobs.seedOf(request.settings().seed(), n * prompts.size());
            List<RequestJobs.Sequence> sequences = new ArrayList<>();
            for (Prepared p : prompts) {
                for (int i = 0; i < n; i++) sequences.add(new RequestJobs.Sequence(model, p.ids(), RequestJobs.choice(params, seed, i)));
            }
            if (!jobs.offer(scheduler, sequences, request.settings().stream(), request.logprobAlternatives())) {
                return CompletableFuture.completedFuture(ChatCompletionsResource.busy(scheduler));
            }
        }
        if (request.settings().stream()) {
            return CompletableFuture.completedFuture(Response.ok(stream(model, jobs, request, prompts, id, created, promptTokens))
                    .type("text/event-stream").header("Cache-Control", "no-cache").build());
        }
        CompletableFuture<List<RequestJobs.Finished>> finished = request.maxTokens() > 0 ? jobs.all() : CompletableFuture.completedFuture(List.of());
        CompletableFuture<Response> result = new CompletableFuture<>();
        result.whenComplete((r, e) -> {
            if (result.isCancelled()) jobs.gone.set(true); // RESTEasy Reactive cancels the answer of a closed connection
        });
        finished.handle((all, error) -> {
            if (error != null) {
                return ChatCompletionsResource.openAiError(new OpenAiException(500, "generation failed: " + RequestJobs.rootMessage(error), null, null));
            }
            TextTokenizer tokenizer = model.base().tokenizer();
            List<Choice> choices = new ArrayList<>();
            for (int k = 0; k < prompts.size() * n; k++) {
                Prepared p = prompts.get(k / n);
                Generator.Completion c = all.isEmpty() ? new Generator.Completion(new long[0], "", "length", p.ids().length) : all.get(k).completion();
                String echo = request.echo() ? p.text() : "";
                Logprobs.Legacy block = null;
                if (request.logprobs() != null) {
                    block = Logprobs.Legacy.empty();
                    if (request.echo()) appendPrompt(block, tokenizer, p);
                    List<TokenLogprobs> generated = all.isEmpty() ? List.of() : all.get(k).all();
                    long[] ids = generated.stream().mapToLong(TokenLogprobs::token).toArray();
                    int[] at = offsets(tokenizer, ids, 0, echo.length(), echo.length() + c.text().length());
                    for (int j = 0; j < ids.length; j++) Logprobs.append(block, tokenizer, ids[j], generated.get(j), at[j]);
                }
                choices.add(new Choice(echo + c.text(), k, block, c.finishReason()));
            }
            return Response.ok(new Body(id, "text_completion", created, model.name(), choices,
                    ChatCompletionChunks.Usage.of(promptTokens, jobs.completionTokens()))).type(MediaType.APPLICATION_JSON).build();
        }).thenAccept(result::complete);
        return result;
    }

    /**
     * The prompt's scores. Each chunk of it runs under the model's lock with the version's adapter
     * in place (the scheduler's batches pass theirs per row and never read the model's), so a long text lets the batch's
     * decode steps run between its chunks.
     */
    private static Prepared scored(ModelHost.Resolved model, Prepared p, int top) {
        List<TokenLogprobs> scores = PromptLogprobs.score(model.base().model(), p.ids(), top, chunk -> {
            synchronized (model.base()) {
                ProjectionHook adapter = model.acquireAdapter(); // held while in use: the bounded cache cannot evict it
                try {
                    model.base().model().setProjectionHook(adapter);
                    chunk.run();
                } finally {
                    model.base().model().setProjectionHook(null);
                    model.releaseAdapter();
                }
            }
        });
        return new Prepared(p.ids(), p.text(), p.unshown(), scores);
    }

    /** The prompt's tokens: the first without a logprob (nothing before it), the others with their scores. */
    private static void appendPrompt(Logprobs.Legacy block, TextTokenizer tokenizer, Prepared p) {
        int[] at = offsets(tokenizer, p.ids(), p.unshown(), 0, p.text().length());
        for (int i = 0; i < p.ids().length; i++) Logprobs.append(block, tokenizer, p.ids()[i], i == 0 ? null : p.scores().get(i - 1), at[i]);
    }

    /**
     * Where each token's text starts: {@code base} plus the length of the text the tokens before it
     * decode to (the first {@code unshown} ones not counted: a BOS a text prompt does not show),
     * never past {@code limit} (a stop string cuts the text).
     */
    static int[] offsets(TextTokenizer tokenizer, long[] ids, int unshown, int base, int limit) {
        int[] at = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            at[i] = Math.min(limit, base + (i <= unshown ? 0 : tokenizer.decode(Arrays.copyOfRange(ids, unshown, i)).length()));
        }
        return at;
    }

    /**
     * Chunks as they are generated: with echo, each choice opens with its prompt; then text pieces
     * (with their tokens' logprobs when asked, offsets counted from the text sent so far), then
     * each choice's finish reason; after the last, the usage when asked, and {@code [DONE]}.
     */
    private StreamingOutput stream(ModelHost.Resolved model, RequestJobs jobs, CompletionRequest request, List<Prepared> prompts,
                                   String id, long created, int promptTokens) {
        int n = request.settings().n();
        int count = prompts.size() * n;
        TextTokenizer tokenizer = model.base().tokenizer();
        return out -> {
            int[] sent = new int[count]; // characters of each choice's text sent so far
            for (int k = 0; k < count; k++) {
                if (!request.echo()) continue;
                Prepared p = prompts.get(k / n);
                Logprobs.Legacy block = null;
                if (request.logprobs() != null) {
                    block = Logprobs.Legacy.empty();
                    appendPrompt(block, tokenizer, p);
                }
                jobs.send(out, chunk(id, created, model.name(), new Choice(p.text(), k, block, null), null));
                sent[k] = p.text().length();
            }
            if (request.maxTokens() == 0) {
                for (int k = 0; k < count; k++) jobs.send(out, chunk(id, created, model.name(), new Choice("", k, null, "length"), null));
            } else {
                boolean ended = jobs.relay(count, out, json, new RequestJobs.StreamWriter() {
                    public void piece(RequestJobs.Piece piece) throws IOException {
                        Logprobs.Legacy block = block(request, tokenizer, piece.logprobs(), sent[piece.index()], sent[piece.index()] + piece.text().length());
                        jobs.send(out, chunk(id, created, model.name(), new Choice(piece.text(), piece.index(), block, null), null));
                        sent[piece.index()] += piece.text().length();
                    }

                    public void finished(RequestJobs.Finished f) throws IOException {
                        Logprobs.Legacy block = f.unsent().isEmpty() ? null : block(request, tokenizer, f.unsent(), sent[f.index()], sent[f.index()]);
                        jobs.send(out, chunk(id, created, model.name(), new Choice("", f.index(), block, f.completion().finishReason()), null));
                    }
                });
                if (!ended) return;
            }
            if (request.settings().includeUsage()) {
                jobs.send(out, json.writeValueAsString(new Body(id, "text_completion", created, model.name(), List.of(),
                        ChatCompletionChunks.Usage.of(promptTokens, jobs.completionTokens()))));
            }
            jobs.send(out, "[DONE]");
        };
    }

    /** A streamed piece's logprobs: each token starts where the one before ends, from {@code from}, never past {@code limit}. */
    private static Logprobs.Legacy block(CompletionRequest request, TextTokenizer tokenizer, List<TokenLogprobs> tokens, int from, int limit) {
        if (request.logprobs() == null) return null;
        Logprobs.Legacy block = Logprobs.Legacy.empty();
        int at = from;
        for (TokenLogprobs t : tokens) {
            Logprobs.append(block, tokenizer, t.token(), t, Math.min(at, limit));
            at += Logprobs.text(tokenizer, t.token()).length();
        }
        return block;
    }

    private String chunk(String id, long created, String model, Choice choice, ChatCompletionChunks.Usage usage) throws IOException {
        return json.writeValueAsString(new Body(id, "text_completion", created, model, List.of(choice), usage));
    }
}
