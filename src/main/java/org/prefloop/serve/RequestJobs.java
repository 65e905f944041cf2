package org.prefloop.serve;

import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import org.prefloop.model.Generator;
import org.prefloop.model.TokenLogprobs;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The sequences of one /v1 request (its {@code n} choices, for each of its prompts) on the batch
 * scheduler: queued all together or not at all, cancelled all together when the client goes
 * away, and reported through one queue of events (for a stream) and one future (for a whole
 * answer). A sequence's logprobs travel with the text they produced: a token whose text is held
 * back (a possible stop string, half a UTF-8 character) has its logprobs sent with the text that
 * releases it, or with the sequence's end.
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
    private final HttpServerResponse response;

    /** Watches the client: a hang-up cancels every sequence of the request, queued or decoding. */
    RequestJobs(HttpServerRequest request, HttpServerResponse response) {
        this.response = response;
        if (request.version() != HttpVersion.HTTP_2) {
            // RESTEasy Reactive pauses reading an HTTP/1 connection; resumed, the hang-up (end of stream) is read and
            // reported. (An HTTP/2 connection carries other streams: a reset stream closes the response, checked below.)
            try {
                request.resume();
            } catch (IllegalStateException alreadyRead) {
                // nothing left to read: the close is still reported when a write fails
            }
            request.connection().closeHandler(v -> {
                gone.set(true);
                events.add(GONE);
            });
        }
        if (response.closed()) gone.set(true); // hung up before the handler was there
    }

    /**
     * Queues the sequences, their index being their place in the list; false (none left queued)
     * when the queue has no room for all of them, and the client is to be answered 429.
     * {@code topLogprobs} is -1 for no logprobs. Only a stream gets pieces.
     */
    boolean offer(BatchScheduler scheduler, List<Sequence> sequences, boolean stream, int topLogprobs) {
        for (int i = 0; i < sequences.size(); i++) {
            Sequence s = sequences.get(i);
            CompletableFuture<Finished> result = new CompletableFuture<>();
            results.add(result);
            if (!scheduler.offer(new BatchScheduler.Job(s.model(), s.prompt(), s.params(), sink(i, result, stream, topLogprobs)))) {
                gone.set(true); // the ones queued already leave the queue unrun
                return false;
            }
        }
        return true;
    }

    private BatchScheduler.Sink sink(int index, CompletableFuture<Finished> result, boolean stream, int topLogprobs) {
        return new BatchScheduler.Sink() {
            // written on the scheduler's thread only
            final List<TokenLogprobs> unsent = new ArrayList<>();
            final List<TokenLogprobs> all = new ArrayList<>();

            public int topLogprobs() {
                return topLogprobs;
            }

            public void token(String text, TokenLogprobs logprobs) {
                if (logprobs != null) {
                    all.add(logprobs);
                    if (stream) unsent.add(logprobs);
                }
                if (stream && !text.isEmpty()) {
                    events.add(new Piece(index, text, List.copyOf(unsent)));
                    unsent.clear();
                }
            }

            public void delta(String text) {
                token(text, null);
            }

            public void done(Generator.Completion completion) {
                Finished f = new Finished(index, completion, List.copyOf(unsent), List.copyOf(all));
                events.add(f);
                result.complete(f);
            }

            public void failed(Throwable error) {
                gone.set(true); // one failed sequence fails the request: its siblings stop too
                events.add(error);
                result.completeExceptionally(error);
            }

            public boolean cancelled() {
                if (!gone.get() && response.closed()) gone.set(true); // noticed by a failed write, without the close handler
                return gone.get();
            }
        };
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

    static String rootMessage(Throwable e) {
        while (e.getCause() != null && e.getCause() != e) e = e.getCause();
        return e.getMessage();
    }
}
