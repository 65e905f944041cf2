package org.prefloop.serve;

import org.prefloop.model.Generator;
import org.prefloop.model.TokenLogprobs;

import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.function.BooleanSupplier;

/**
 * What one sequence on the batch scheduler produces, for every kind of caller (/v1 streams and
 * whole answers, rounds and evaluations): its end as a {@link RequestJobs.Finished} future, and
 * for a stream each released piece of text as an event. A sequence's logprobs travel with the
 * text they produced: a token whose text is held back (a possible stop string, half a UTF-8
 * character) has its logprobs sent with the text that releases it, or with the sequence's end.
 * All methods but {@link #cancelled} run on the scheduler's thread.
 */
final class SequenceSink implements BatchScheduler.Sink {
    private final int index;
    private final int topLogprobs;
    private final Queue<Object> events; // null: not a stream
    private final BooleanSupplier cancelled;
    private final Runnable onFailure;
    private final CompletableFuture<RequestJobs.Finished> result = new CompletableFuture<>();
    private final List<TokenLogprobs> unsent = new ArrayList<>();
    private final List<TokenLogprobs> all = new ArrayList<>();

    /**
     * @param topLogprobs alternatives per token's logprobs, -1 for none
     * @param events      where a stream's pieces, its end and a failure go; null when only the end is wanted
     * @param cancelled   whether the sequence is no longer wanted (its client went away)
     * @param onFailure   what else a failure stops (the request's other sequences)
     */
    SequenceSink(int index, int topLogprobs, Queue<Object> events, BooleanSupplier cancelled, Runnable onFailure) {
        this.index = index;
        this.topLogprobs = topLogprobs;
        this.events = events;
        this.cancelled = cancelled;
        this.onFailure = onFailure;
    }

    CompletableFuture<RequestJobs.Finished> result() {
        return result;
    }

    @Override
    public int topLogprobs() {
        return topLogprobs;
    }

    @Override
    public void token(String text, TokenLogprobs logprobs) {
        if (logprobs != null) {
            all.add(logprobs);
            if (events != null) unsent.add(logprobs);
        }
        if (events != null && !text.isEmpty()) {
            events.add(new RequestJobs.Piece(index, text, List.copyOf(unsent)));
            unsent.clear();
        }
    }

    @Override
    public void done(Generator.Completion completion) {
        RequestJobs.Finished f = new RequestJobs.Finished(index, completion, List.copyOf(unsent), List.copyOf(all));
        result.complete(f); // first: what depends on the end (the request's token count) is done before a stream reads it
        if (events != null) events.add(f);
    }

    @Override
    public void failed(Throwable error) {
        onFailure.run();
        if (events != null) events.add(error);
        result.completeExceptionally(error);
    }

    @Override
    public boolean cancelled() {
        return cancelled.getAsBoolean();
    }
}
