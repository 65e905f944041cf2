package org.prefloop.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.Counter;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import org.prefloop.model.Generator;
import org.prefloop.model.TokenLogprobs;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

/**
 * The sequences of one request (a /v1 request's {@code n} choices for each of its prompts; a
 * round's or an evaluation's conversations) on the batch scheduler: queued all together or not
 * at all, cancelled all together when the client goes away, and reported through one queue of
 * events (for a stream, {@link #relay}) and one future (for a whole answer, {@link #all}), each
 * sequence through its {@link SequenceSink}. The completion tokens of ended sequences are
 * counted once here, for the answer's usage and the service's metric.
 */
final class RequestJobs {
    /** Text a sequence released, with the logprobs of the tokens that made it (empty when not asked for). */
    record Piece(int index, String text, List<TokenLogprobs> logprobs) {
    }

    /** A sequence's end: its completion, the logprobs not sent with a piece yet, and all of its logprobs. */
    record Finished(int index, Generator.Completion completion, List<TokenLogprobs> unsent, List<TokenLogprobs> all) {
    }

    /** What a stream gets when the client is gone or nothing came for too long. */
    static final Object GONE = new Object();

    /** One sequence to generate. */
    record Sequence(ModelHost.Resolved model, long[] prompt, Generator.GenerationParams params) {
    }

    /** The seed stream the model core gives sample i of one seed ({@code DecodeBatch}). */
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    /**
     * The settings of choice {@code index}: choices draw independently, and with a seed
     * reproducibly, choice i as the model core's sample i of that seed (so choice 0 is what the
     * same request with n = 1 gets). Without a seed, the request's settings as they are.
     */
    static Generator.GenerationParams choice(Generator.GenerationParams p, Long seed, int index) {
        if (seed == null) return p;
        return new Generator.GenerationParams(p.maxTokens(), p.temperature(), p.topP(), p.topK(), p.repetitionPenalty(),
                seed + index * GOLDEN, p.stop(), p.stopTokenIds(), p.frequencyPenalty(), p.presencePenalty(), p.ignoreEos());
    }

    /** The seed of a request's choices: its own, or for several unseeded choices one fresh seed, so they never share a stream. */
    static Long seedOf(Long requested, int choices) {
        if (requested != null || choices == 1) return requested;
        return java.util.concurrent.ThreadLocalRandom.current().nextLong();
    }

    final AtomicBoolean gone = new AtomicBoolean();
    private final LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
    private final List<CompletableFuture<Finished>> results = new ArrayList<>();
    private final BooleanSupplier hungUp;
    private final Counter tokens;
    private final AtomicInteger completionTokens = new AtomicInteger();

    /**
     * Watches the client: a hang-up cancels every sequence of the request, queued or decoding.
     * {@code tokens} counts the completion tokens of every sequence that ends.
     */
    RequestJobs(HttpServerRequest request, HttpServerResponse response, Counter tokens) {
        this.tokens = tokens;
        this.hungUp = watch(request, response, () -> {
            gone.set(true);
            events.add(GONE);
        });
        if (hungUp.getAsBoolean()) gone.set(true); // hung up before the handler was there
    }

    /** The service's own sequences (rounds, evaluations): cancelled when {@code hungUp} says so, no API usage counted. */
    RequestJobs(BooleanSupplier hungUp) {
        this.tokens = null;
        this.hungUp = hungUp;
    }

    /**
     * Whether an HTTP client has hung up: true once its connection closed, or a write to it
     * failed; {@code onHangUp} runs when the close is seen.
     */
    static BooleanSupplier watch(HttpServerRequest request, HttpServerResponse response, Runnable onHangUp) {
        AtomicBoolean closed = new AtomicBoolean();
        if (request.version() != HttpVersion.HTTP_2) {
            // RESTEasy Reactive pauses reading an HTTP/1 connection; resumed, the hang-up (end of stream) is read and
            // reported. (An HTTP/2 connection carries other streams: a reset stream closes the response, checked below.)
            try {
                request.resume();
            } catch (IllegalStateException alreadyRead) {
                // nothing left to read: the close is still reported when a write fails
            }
            request.connection().closeHandler(v -> {
                closed.set(true);
                onHangUp.run();
            });
        }
        return () -> closed.get() || response.closed();
    }

    /**
     * Queues the sequences, their index being their place in the list; false (none left queued)
     * when the queue has no room for all of them, and the client is to be answered 429.
     * {@code topLogprobs} is -1 for no logprobs. Only a stream gets pieces.
     */
    boolean offer(BatchScheduler scheduler, List<Sequence> sequences, boolean stream, int topLogprobs) {
        for (int i = 0; i < sequences.size(); i++) {
            if (!scheduler.offer(job(sequences.get(i), i, stream, topLogprobs))) {
                gone.set(true); // the ones queued already leave the queue unrun
                return false;
            }
        }
        return true;
    }

    /** Queues the sequences, waiting for room in the queue: the service's own work waits rather than fails. */
    void submit(BatchScheduler scheduler, List<Sequence> sequences) {
        for (int i = 0; i < sequences.size(); i++) scheduler.submit(job(sequences.get(i), i, false, -1));
    }

    private BatchScheduler.Job job(Sequence s, int index, boolean stream, int topLogprobs) {
        SequenceSink sink = new SequenceSink(index, topLogprobs, stream ? events : null, this::cancelled, () -> gone.set(true));
        results.add(sink.result().thenApply(this::counted));
        return new BatchScheduler.Job(s.model(), s.prompt(), s.params(), sink);
    }

    private Finished counted(Finished f) {
        int n = f.completion().tokenIds().length;
        completionTokens.addAndGet(n);
        if (tokens != null) tokens.increment(n);
        return f;
    }

    private boolean cancelled() {
        if (!gone.get() && hungUp.getAsBoolean()) gone.set(true);
        return gone.get();
    }

    /** The completion tokens of the sequences that have ended so far, for the answer's usage. */
    int completionTokens() {
        return completionTokens.get();
    }

    /** Every sequence's end, in index order; fails with the first failure. */
    CompletableFuture<List<Finished>> all() {
        return CompletableFuture.allOf(results.toArray(CompletableFuture[]::new))
                .thenApply(v -> results.stream().map(CompletableFuture::join).toList());
    }

    /** The next event of a stream: a {@link Piece}, a {@link Finished}, a Throwable, or {@link #GONE}. */
    Object next() {
        try {
            Object e = events.poll(10, TimeUnit.MINUTES);
            if (e == null || e == GONE) {
                gone.set(true);
                return GONE;
            }
            return e;
        } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
            gone.set(true);
            return GONE;
        }
    }

    /** What a stream writes for each event of its sequences. */
    interface StreamWriter {
        void piece(Piece piece) throws IOException;

        void finished(Finished finished) throws IOException;
    }

    /**
     * Hands a stream's events to {@code writer} until all {@code count} sequences have ended
     * (true), the client went away or a sequence failed (false; the failure is sent as OpenAI's
     * error in a data line). A write that fails means the client went away: the sequences stop.
     */
    boolean relay(int count, OutputStream out, ObjectMapper json, StreamWriter writer) throws IOException {
        try {
            for (int ended = 0; ended < count; ) {
                Object e = next();
                if (e == GONE) return false;
                if (e instanceof Piece piece) {
                    writer.piece(piece);
                } else if (e instanceof Finished f) {
                    writer.finished(f);
                    ended++;
                } else {
                    send(out, json.writeValueAsString(BearerKeyFilter.OpenAiError.of(
                            "generation failed: " + rootMessage((Throwable) e), "server_error", null)));
                    return false;
                }
            }
            return true;
        } catch (IOException writeFailed) {
            gone.set(true); // the client went away mid-stream
            throw writeFailed;
        }
    }

    /** One server-sent event, flushed at once; a write that fails means the client went away, and the sequences stop. */
    void send(OutputStream out, String data) throws IOException {
        try {
            out.write(("data: " + data + "\n\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
        } catch (IOException writeFailed) {
            gone.set(true);
            throw writeFailed;
        }
    }

    static String rootMessage(Throwable e) {
        while (e.getCause() != null && e.getCause() != e) e = e.getCause();
        return e.getMessage();
    }
}
