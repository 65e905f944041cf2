package org.prefloop.serve;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import org.prefloop.model.DecodeBatch;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Where each request's time to first token goes in the engine, as Micrometer meters (with
 * histograms, so that a benchmark can difference two scrapes into one workload's percentiles).
 * The phases add up to {@code prefloop.serve.first_token}, offered to the scheduler → first
 * token handed to the request's sink:
 * <ul>
 * <li>{@code prefloop.serve.queue.in_progress}: offered → end of the decode step or prefill that
 * ran when it arrived (0 on an idle engine);</li>
 * <li>{@code prefloop.serve.queue.after}: from then → taken from the queue (more work ran first:
 * no row, no KV budget, another base);</li>
 * <li>{@code prefloop.serve.prefill.wait}: taken → its prefill pass starts (admission, prefix-cache loads);</li>
 * <li>{@code prefloop.serve.prefill}: its prefill passes, first start → last end, with
 * {@code prefloop.serve.prefill.rows} and {@code prefloop.serve.prefill.tokens}: the rows and
 * real tokens of the pass it shared;</li>
 * <li>{@code prefloop.serve.first_token.emit}: pass end → first token handed to its sink (joining
 * the batch's cache, sampling, decoding text).</li>
 * </ul>
 * {@code prefloop.serve.first_token.empty} counts first tokens whose text is empty (the client sees
 * nothing until a later token), {@code prefloop.serve.step} times the decode steps.
 */
final class FirstTokenMeters {
    private final Timer firstToken;
    private final Timer inProgress;
    private final Timer after;
    private final Timer prefillWait;
    private final Timer prefill;
    private final Timer emit;
    private final Timer step;
    private final DistributionSummary rows;
    private final DistributionSummary tokens;
    private final Counter empty;

    FirstTokenMeters(MeterRegistry registry) {
        firstToken = timer(registry, "prefloop.serve.first_token", "offered to the scheduler -> first token handed to the request's sink");
        inProgress = timer(registry, "prefloop.serve.queue.in_progress", "offered -> end of the step or prefill running at its arrival");
        after = timer(registry, "prefloop.serve.queue.after", "end of the work running at arrival -> taken from the queue");
        prefillWait = timer(registry, "prefloop.serve.prefill.wait", "taken from the queue -> its prefill pass starts");
        prefill = timer(registry, "prefloop.serve.prefill", "a request's prefill passes, first start -> last end");
        emit = timer(registry, "prefloop.serve.first_token.emit", "prefill end -> first token handed to the sink");
        step = timer(registry, "prefloop.serve.step", "one decode step of the running batch");
        rows = DistributionSummary.builder("prefloop.serve.prefill.rows").description("rows of the prefill pass a request shared")
                .publishPercentileHistogram().minimumExpectedValue(1.0).maximumExpectedValue(64.0).register(registry);
        tokens = DistributionSummary.builder("prefloop.serve.prefill.tokens").description("real tokens of the prefill pass a request shared")
                .publishPercentileHistogram().minimumExpectedValue(1.0).maximumExpectedValue(65536.0).register(registry);
        empty = Counter.builder("prefloop.serve.first_token.empty").description("first tokens whose text was empty").register(registry);
    }

    private static Timer timer(MeterRegistry registry, String name, String description) {
        return Timer.builder(name).description(description).publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofNanos(100_000)).maximumExpectedValue(Duration.ofSeconds(120)).register(registry);
    }

    /** One request's first token, handed to its sink at {@code now}. */
    void record(long offered, long workEnded, long taken, DecodeBatch.Prefilled p, long now, boolean emptyText) {
        firstToken.record(now - offered, TimeUnit.NANOSECONDS);
        inProgress.record(workEnded - offered, TimeUnit.NANOSECONDS);
        after.record(taken - workEnded, TimeUnit.NANOSECONDS);
        prefillWait.record(p.start() - taken, TimeUnit.NANOSECONDS);
        prefill.record(p.end() - p.start(), TimeUnit.NANOSECONDS);
        emit.record(now - p.end(), TimeUnit.NANOSECONDS);
        rows.record(p.rows());
        tokens.record(p.tokens());
        if (emptyText) empty.increment();
    }

    void step(long nanos) {
        step.record(nanos, TimeUnit.NANOSECONDS);
    }
}
