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
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.HttpServerResponse;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.StreamingOutput;
import org.prefloop.model.Generator;
import org.prefloop.platform.ProblemException;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.LinkedBlockingQueue;
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

    @Inject
    ChatCompletionsResource(MeterRegistry registry) {
        tokens = Counter.builder("prefloop.serve.tokens").description("completion tokens generated").register(registry);
        firstToken = Timer.builder("prefloop.serve.time_to_first_token").publishPercentiles(0.5, 0.99)
                .description("time from request to the first streamed token").register(registry);
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
        AtomicBoolean gone = new AtomicBoolean();
        LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
        if (httpRequest.version() != HttpVersion.HTTP_2) {
            // RESTEasy Reactive pauses reading an HTTP/1 connection; resumed, the hang-up (end of stream) is read and
            // reported. (An HTTP/2 connection carries other streams: a reset stream closes the response, checked below.)
            try {
                httpRequest.resume();
            } catch (IllegalStateException alreadyRead) {
                // nothing left to read: the close is still reported when a write fails
            }
            httpRequest.connection().closeHandler(v -> {
                gone.set(true);
                events.add(GONE);
            });
        }
        if (response.closed()) gone.set(true); // hung up before the handler was there
        CompletableFuture<Generator.Completion> done = new CompletableFuture<>();
        BatchScheduler.Sink sink = new BatchScheduler.Sink() {
            public void delta(String text) {
                if (request.stream()) events.add(text);
            }

            public void done(Generator.Completion completion) {
                events.add(completion);
                done.complete(completion);
            }

            public void failed(Throwable error) {
                events.add(error);
                done.completeExceptionally(error);
            }

            public boolean cancelled() {
                if (!gone.get() && response.closed()) gone.set(true); // noticed by a failed write, without the close handler
                return gone.get();
            }
        };
        if (!scheduler.offer(new BatchScheduler.Job(model, prompt, params, sink))) {
            int retry = scheduler.retryAfterSeconds();
            return CompletableFuture.completedFuture(Response.fromResponse(openAiError(new OpenAiException(429,
                    "The server is busy: its queue of " + scheduler.maxQueue + " requests is full. Retry after " + retry + " s.",
                    null, "queue_full"))).header("Retry-After", retry).build());
        }
        if (request.stream()) {
            return CompletableFuture.completedFuture(Response.ok(stream(model, request, events, gone, id, created, start))
                    .type("text/event-stream").header("Cache-Control", "no-cache").build());
        }
        CompletableFuture<Response> result = new CompletableFuture<>();
        result.whenComplete((r, e) -> {
            if (result.isCancelled()) gone.set(true); // RESTEasy Reactive cancels the answer of a closed connection
        });
        // off the scheduler's thread: the answer is remembered (a database write) before it is sent
        done.handleAsync((c, error) -> {
            if (error != null) {
                return openAiError(new OpenAiException(500, "generation failed: " + rootMessage(error), null, null));
            }
            tokens.increment(c.tokenIds().length);
            completionLog.remember(id, model.name(), request.messages(), c.text());
            return Response.ok(new ChatCompletionChunks.Completion(id, "chat.completion", created, model.name(),
                    List.of(new ChatCompletionChunks.Choice(0, new ChatCompletionChunks.AssistantMessage("assistant", c.text()), c.finishReason())),
                    ChatCompletionChunks.Usage.of(c.promptTokens(), c.tokenIds().length))).type(MediaType.APPLICATION_JSON).build();
        }, io.smallrye.mutiny.infrastructure.Infrastructure.getDefaultWorkerPool()).thenAccept(result::complete);
        return result;
    }

    private static final Object GONE = new Object();

    private static String rootMessage(Throwable e) {
        while (e.getCause() != null && e.getCause() != e) e = e.getCause();
        return e.getMessage();
    }

    private StreamingOutput stream(ModelHost.Resolved model, ChatCompletionRequest request, LinkedBlockingQueue<Object> events, AtomicBoolean gone,
                                   String id, long created, long start) {
        boolean includeUsage = request.includeUsage();
        List<ChatCompletionRequest.Message> messages = request.messages();
        return out -> {
            try {
                write(out, chunk(id, created, model.name(), new ChatCompletionChunks.Delta("assistant", ""), null, null));
                boolean first = true;
                while (true) {
                    Object e;
                    try {
                        e = events.poll(10, TimeUnit.MINUTES);
                    } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                        gone.set(true);
                        return;
                    }
                    if (e == null || e == GONE) {
                        gone.set(true);
                        return;
                    }
                    if (e instanceof String text) {
                        if (first) {
                            firstToken.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
                            first = false;
                        }
                        write(out, chunk(id, created, model.name(), new ChatCompletionChunks.Delta(null, text), null, null));
                    } else if (e instanceof Generator.Completion c) {
                        tokens.increment(c.tokenIds().length);
                        completionLog.remember(id, model.name(), messages, c.text());
                        write(out, chunk(id, created, model.name(), new ChatCompletionChunks.Delta(null, null), c.finishReason(), null));
                        if (includeUsage) {
                            write(out, json.writeValueAsString(new ChatCompletionChunks.Chunk(id, "chat.completion.chunk", created, model.name(),
                                    List.of(), ChatCompletionChunks.Usage.of(c.promptTokens(), c.tokenIds().length))));
                        }
                        write(out, "[DONE]");
                        return;
                    } else {
                        write(out, json.writeValueAsString(BearerKeyFilter.OpenAiError.of(
                                "generation failed: " + rootMessage((Throwable) e), "server_error", null)));
                        return;
                    }
                }
            } catch (IOException writeFailed) {
                gone.set(true); // the client went away mid-stream
                throw writeFailed;
            }
        };
    }

    private String chunk(String id, long created, String model, ChatCompletionChunks.Delta delta, String finish,
                         ChatCompletionChunks.Usage usage) throws IOException {
        return json.writeValueAsString(new ChatCompletionChunks.Chunk(id, "chat.completion.chunk", created, model,
                List.of(new ChatCompletionChunks.ChunkChoice(0, delta, finish)), usage));
    }

    private static void write(OutputStream out, String data) throws IOException {
        out.write(("data: " + data + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    /**
     * The generation settings of a checked request. Prompt plus completion must fit the model's
     * context, checked here before anything is scheduled; without max_tokens the completion may
     * use what remains of it.
     */
    static Generator.GenerationParams params(ChatCompletionRequest r, int promptTokens, int context) {
        if (r.maxTokens() == null ? promptTokens >= context : promptTokens + r.maxTokens() > context) {
            String message = r.maxTokens() == null
                    ? "This model's maximum context length is " + context + " tokens. However, your messages resulted in "
                            + promptTokens + " tokens, which leaves no room for a completion. Please reduce the length of the messages."
                    : "This model's maximum context length is " + context + " tokens. However, you requested "
                            + (promptTokens + r.maxTokens()) + " tokens (" + promptTokens + " in the messages, " + r.maxTokens()
                            + " in the completion). Please reduce the length of the messages or completion.";
            throw OpenAiException.invalid("messages", "context_length_exceeded", message);
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
