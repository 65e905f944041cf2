package org.prefloop.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.annotation.security.PermitAll;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import io.smallrye.common.annotation.Blocking;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.StreamingOutput;
import org.prefloop.model.Generator;
import org.prefloop.model.TokenLogprobs;
import org.prefloop.platform.ProblemException;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

/**
 * OpenAI's {@code POST /v1/chat/completions} on the served model: the whole answer as JSON, or
 * with {@code stream: true} as server-sent events in OpenAI's chunk format ending in
 * {@code data: [DONE]}. Usage counts are the real token counts of prompt and completion.
 */
@Path("/v1/chat/completions")
@PermitAll
public class ChatCompletionsResource {
    @Inject
    ModelHost host;

    @Inject
    CompletionLog completionLog;

    @Inject
    BatchScheduler scheduler;

    @Inject
    ObjectMapper json;

    private final Counter tokens;
    private final Timer firstToken;
    private final Timer firstChunk;

    @Inject
    ChatCompletionsResource(MeterRegistry registry) {
        tokens = Counter.builder("prefloop.serve.tokens").description("completion tokens generated").register(registry);
        firstToken = Timer.builder("prefloop.serve.time_to_first_token").publishPercentiles(0.5, 0.99)
                .description("time from request to the first streamed token").register(registry);
        // the same span as a histogram, which a benchmark can difference between two scrapes (FirstTokenMeters has the engine's part)
        firstChunk = Timer.builder("prefloop.serve.first_chunk").publishPercentileHistogram()
                .minimumExpectedValue(java.time.Duration.ofNanos(100_000)).maximumExpectedValue(java.time.Duration.ofSeconds(120))
                .description("request received -> its first text chunk written to the stream").register(registry);
    }

    @POST
    @Blocking // resolving the model reads the registry; generation itself does not hold this thread
    @Consumes(MediaType.WILDCARD) // the body is read as text, so that malformed JSON gets OpenAI's answer, not a generic one
    public CompletionStage<Response> complete(String body, @Context HttpServerResponse response, @Context HttpServerRequest httpRequest) {
        long start = System.nanoTime();
        ChatCompletionRequest request;
        ModelHost.Resolved model;
        long[] prompt;
        Generator.GenerationParams params;
        try {
            request = ChatRequests.parse(body, json);
            try {
                model = host.resolve(request.model());
            } catch (ProblemException e) {
                throw new OpenAiException(e.status(), e.getMessage(), e.field(), e.status() == 404 ? "model_not_found" : null);
            }
            prompt = model.base().tokenizer().encode(model.render(request.messages()));
            params = params(request, prompt.length, model.base().model().config().maxPositionEmbeddings());
        } catch (OpenAiException e) {
            return CompletableFuture.completedFuture(openAiError(e));
        }
        String id = "chatcmpl-" + UUID.randomUUID().toString().replace("-", "");
        long created = System.currentTimeMillis() / 1000;
        // a client that goes away cancels its request: dropped from the queue, or out of the batch before the next step
        RequestJobs jobs = new RequestJobs(httpRequest, response, tokens);
        Long seed = RequestJobs.seedOf(request.seed(), request.n());
        List<RequestJobs.Sequence> sequences = new ArrayList<>();
        for (int i = 0; i < request.n(); i++) sequences.add(new RequestJobs.Sequence(model, prompt, RequestJobs.choice(params, seed, i)));
        if (!jobs.offer(scheduler, sequences, request.stream(), request.logprobAlternatives())) {
            return CompletableFuture.completedFuture(busy(scheduler));
        }
        if (request.stream()) {
            return CompletableFuture.completedFuture(Response.ok(stream(model, jobs, request, id, created, prompt.length, start))
                    .type("text/event-stream").header("Cache-Control", "no-cache").build());
        }
        CompletableFuture<Response> result = new CompletableFuture<>();
        result.whenComplete((r, e) -> {
            if (result.isCancelled()) jobs.gone.set(true); // RESTEasy Reactive cancels the answer of a closed connection
        });
        // off the scheduler's thread: the answer is remembered (a database write) before it is sent
        jobs.all().handleAsync((finished, error) -> {
            if (error != null) {
                return openAiError(new OpenAiException(500, "generation failed: " + RequestJobs.rootMessage(error), null, null));
            }
            List<ChatCompletionChunks.Choice> choices = new ArrayList<>();
            for (RequestJobs.Finished f : finished) {
                Generator.Completion c = f.completion();
                choices.add(new ChatCompletionChunks.Choice(f.index(), new ChatCompletionChunks.AssistantMessage("assistant", c.text()),
                        request.logprobs() ? Logprobs.chat(model.base().tokenizer(), f.all()) : null, c.finishReason()));
            }
            // what feedback on this id refers to: the first choice (the only one unless n > 1)
            completionLog.remember(id, model.name(), request.messages(), choices.get(0).message().content());
            return Response.ok(new ChatCompletionChunks.Completion(id, "chat.completion", created, model.name(), choices,
                    ChatCompletionChunks.Usage.of(prompt.length, jobs.completionTokens()))).type(MediaType.APPLICATION_JSON).build();
        }, io.smallrye.mutiny.infrastructure.Infrastructure.getDefaultWorkerPool()).thenAccept(result::complete);
        return result;
    }

    /** 429 with Retry-After, in OpenAI's shape: the queue has no room for the request's sequences. */
    static Response busy(BatchScheduler scheduler) {
        int retry = scheduler.retryAfterSeconds();
        return Response.fromResponse(openAiError(new OpenAiException(429,
                "The server is busy: its queue of " + scheduler.maxQueue + " requests is full. Retry after " + retry + " s.",
                null, "queue_full"))).header("Retry-After", retry).build();
    }

    /**
     * The chunks of all choices as they are generated: each choice opens with its role, then its
     * text pieces (with the logprobs of their tokens when asked), then its finish reason. After
     * the last choice ends, the usage of all of them when asked, and {@code [DONE]}.
     */
    private StreamingOutput stream(ModelHost.Resolved model, RequestJobs jobs, ChatCompletionRequest request, String id,
                                   long created, int promptTokens, long start) {
        return out -> {
            for (int i = 0; i < request.n(); i++) {
                jobs.send(out, chunk(id, created, model.name(), i, new ChatCompletionChunks.Delta("assistant", ""), null, null));
            }
            boolean[] first = {true};
            boolean ended = jobs.relay(request.n(), out, json, new RequestJobs.StreamWriter() {
                public void piece(RequestJobs.Piece piece) throws IOException {
                    if (first[0]) firstToken.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
                    jobs.send(out, chunk(id, created, model.name(), piece.index(), new ChatCompletionChunks.Delta(null, piece.text()),
                            logprobs(model, request, piece.logprobs()), null));
                    if (first[0]) {
                        firstChunk.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
                        first[0] = false;
                    }
                }

                public void finished(RequestJobs.Finished f) throws IOException {
                    Generator.Completion c = f.completion();
                    if (f.index() == 0) completionLog.remember(id, model.name(), request.messages(), c.text());
                    jobs.send(out, chunk(id, created, model.name(), f.index(), new ChatCompletionChunks.Delta(null, null),
                            f.unsent().isEmpty() ? null : logprobs(model, request, f.unsent()), c.finishReason()));
                }
            });
            if (!ended) return;
            if (request.includeUsage()) {
                jobs.send(out, json.writeValueAsString(new ChatCompletionChunks.Chunk(id, "chat.completion.chunk", created, model.name(),
                        List.of(), ChatCompletionChunks.Usage.of(promptTokens, jobs.completionTokens()))));
            }
            jobs.send(out, "[DONE]");
        };
    }

    private static Logprobs.Chat logprobs(ModelHost.Resolved model, ChatCompletionRequest request, List<TokenLogprobs> tokens) {
        return request.logprobs() ? Logprobs.chat(model.base().tokenizer(), tokens) : null;
    }

    private String chunk(String id, long created, String model, int index, ChatCompletionChunks.Delta delta,
                         Logprobs.Chat logprobs, String finish) throws IOException {
        return json.writeValueAsString(new ChatCompletionChunks.Chunk(id, "chat.completion.chunk", created, model,
                List.of(new ChatCompletionChunks.ChunkChoice(index, delta, logprobs, finish)), null));
    }

    /**
     * The generation settings of a checked request. Prompt plus completion must fit the model's
     * context, checked here before anything is scheduled; without max_tokens the completion may
     * use what remains of it.
     */
    static Generator.GenerationParams params(ChatCompletionRequest r, int promptTokens, int context) {
        return params(r, promptTokens, context, "messages", "messages");
    }

    /** {@link #params(ChatCompletionRequest, int, int)} where the prompt came from {@code param}, called {@code what} in messages. */
    static Generator.GenerationParams params(ChatCompletionRequest r, int promptTokens, int context, String param, String what) {
        if (r.maxTokens() == null ? promptTokens >= context : promptTokens + r.maxTokens() > context) {
            String message = r.maxTokens() == null
                    ? "This model's maximum context length is " + context + " tokens. However, your " + what + " resulted in "
                            + promptTokens + " tokens, which leaves no room for a completion. Please reduce the length of the " + what + "."
                    : "This model's maximum context length is " + context + " tokens. However, you requested "
                            + (promptTokens + r.maxTokens()) + " tokens (" + promptTokens + " in the " + what + ", " + r.maxTokens()
                            + " in the completion). Please reduce the length of the " + what + " or completion.";
            throw OpenAiException.invalid(param, "context_length_exceeded", message);
        }
        int maxTokens = r.maxTokens() == null ? context - promptTokens : r.maxTokens();
        float temperature = r.temperature() == null ? 1f : r.temperature();
        return new Generator.GenerationParams(maxTokens, temperature, r.topP() == null ? 1f : r.topP(), r.topK() == null ? 0 : r.topK(),
                r.repetitionPenalty() == null ? 1f : r.repetitionPenalty(), r.seed(), r.stop(), new long[0],
                r.frequencyPenalty() == null ? 0f : r.frequencyPenalty(), r.presencePenalty() == null ? 0f : r.presencePenalty(),
                r.ignoreEos());
    }

    static Response openAiError(OpenAiException e) {
        Response.ResponseBuilder b = Response.status(e.status).type(MediaType.APPLICATION_JSON)
                .entity(BearerKeyFilter.OpenAiError.of(e.getMessage(), e.type(), e.param, e.code));
        return b.build();
    }
}
