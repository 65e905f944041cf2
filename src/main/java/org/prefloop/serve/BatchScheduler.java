package org.prefloop.serve;

import ai.djl.pytorch.jni.JniUtils;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import org.jboss.logging.Logger;
import org.prefloop.model.DecodeBatch;
import org.prefloop.model.Generator;
import org.prefloop.model.ProjectionHook;
import org.prefloop.model.TokenLogprobs;
import org.prefloop.platform.Settings;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Runs generation on one thread with iteration-level (continuous) batching: between two decode
 * steps, or between two layers of the step in progress (prefilled there, they have their first
 * token before the step ends), waiting requests join the running batch (up to {@code prefloop.serve.max-batch}, and
 * while the KV cache they may need fits {@code prefloop.serve.kv-cache-mb}), finished ones leave
 * at once, and each keeps its own sampling settings. A request whose client went away is dropped
 * from the queue, or leaves the batch before the next step. The queue is bounded
 * ({@code prefloop.serve.max-queue}): {@link #offer} refuses when it is full, so that /v1 can
 * answer 429 instead of letting work pile up. The model is compute-bound, so one thread with
 * wide batches beats many threads with one sequence each.
 *
 * <p>A batch runs on one base model; its rows may run different versions of it (each a LoRA
 * adapter over that base, or the base itself), sharing every forward pass of the base
 * (S-LoRA/Punica style). Requests for another base wait, in arrival order, until the running
 * batch drains.
 */
@ApplicationScoped
public class BatchScheduler {
    private static final Logger LOG = Logger.getLogger(BatchScheduler.class);

    /** Receives one sequence's output as it is generated ({@link SequenceSink}). */
    interface Sink {
        /** How many alternatives each token's logprobs list; -1: no logprobs. */
        int topLogprobs();

        /** A generated token's text (possibly empty) and, when asked for, its logprobs. */
        void token(String textDelta, TokenLogprobs logprobs);

        void done(Generator.Completion completion);

        void failed(Throwable error);

        /** True once the client has gone: the sequence is dropped before its next step. */
        boolean cancelled();
    }

    record Job(ModelHost.Resolved model, long[] prompt, Generator.GenerationParams params, Sink sink) {
    }

    /** Requests waiting for a place in the batch, and sequences decoding now. */
    record Load(int waiting, int running) {
    }

    int maxBatch;

    int maxQueue;

    long kvCacheMb;

    /** Prompts longer than this are prefilled this many tokens per decode step (0: at once), so running streams keep going. */
    int prefillChunk;

    /** Prefill passes for arrivals run between two layers of a step, at most (0: arrivals wait for the step's end). */
    int prefillsInsideStep;

    /** Keys and values of shared prompt prefixes kept for reuse, per base, counted within kv-cache-mb (0: off). */
    long prefixCacheMb;

    @jakarta.inject.Inject
    void configure(Settings settings) {
        Settings.Serve serve = settings.serve();
        maxBatch = serve.maxBatch();
        maxQueue = serve.maxQueue();
        kvCacheMb = serve.kvCacheMb();
        prefillChunk = serve.prefillChunk();
        prefillsInsideStep = serve.prefillsInsideStep();
        prefixCacheMb = serve.prefixCacheMb();
    }

    /** A job in the queue, with what its time to first token is broken down by ({@link FirstTokenMeters}). */
    private static final class Queued {
        final Job job;
        final long offered = System.nanoTime();
        long workEnded; // when the step or prefill that ran at its arrival ended (0: not yet; the idle engine: when it was taken)
        long taken;

        Queued(Job job) {
            this.job = job;
        }
    }

    private final Deque<Queued> waiting = new ArrayDeque<>();
    private final FirstTokenMeters firstTokens;
    private final DistributionSummary batchSizes;
    private final DistributionSummary batchVersions;
    private final AtomicLong cancelled = new AtomicLong();
    private final AtomicLong generated = new AtomicLong();
    private final AtomicLong prefixReused = new AtomicLong();
    private final AtomicLong admittedInsideSteps = new AtomicLong();
    private volatile int running;
    private int prefillsInStep; // the generate thread's: prefill passes run inside the step in progress
    private volatile Thread worker;
    private volatile boolean stopped;

    @jakarta.inject.Inject
    BatchScheduler(MeterRegistry registry) {
        firstTokens = new FirstTokenMeters(registry);
        batchSizes = DistributionSummary.builder("prefloop.serve.batch.size")
                .description("sequences that shared one decode step").register(registry);
        batchVersions = DistributionSummary.builder("prefloop.serve.batch.versions")
                .description("model versions (adapters over one base, or the base) that shared one decode step").register(registry);
        FunctionCounter.builder("prefloop.serve.cancelled", cancelled, AtomicLong::get)
                .description("requests dropped because their client went away").register(registry);
        FunctionCounter.builder("prefloop.serve.prefix.reused", prefixReused, AtomicLong::get)
                .description("prompt tokens whose keys and values came from the prefix cache").register(registry);
        FunctionCounter.builder("prefloop.serve.admitted.inside_step", admittedInsideSteps, AtomicLong::get)
                .description("requests prefilled between two layers of a decode step, their first token before it ended").register(registry);
        Gauge.builder("prefloop.serve.queue", this, s -> s.load().waiting()).description("requests waiting for the batch").register(registry);
        Gauge.builder("prefloop.serve.running", this, s -> s.load().running()).description("sequences decoding").register(registry);
    }

    /** Queues a job unless the queue is full (then false: the caller answers 429). */
    boolean offer(Job job) {
        ensureStarted();
        synchronized (waiting) {
            if (waiting.size() >= maxQueue) return false;
            waiting.addLast(new Queued(job));
            waiting.notifyAll();
            return true;
        }
    }

    /** Queues a job, waiting for room: the service's own batches (rounds, evaluations) wait rather than fail. */
    void submit(Job job) {
        ensureStarted();
        synchronized (waiting) {
            while (waiting.size() >= maxQueue) {
                try {
                    waiting.wait(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    job.sink().failed(e);
                    return;
                }
            }
            waiting.addLast(new Queued(job));
            waiting.notifyAll();
        }
    }

    /** Requests dropped so far because their client went away. */
    long cancelledCount() {
        return cancelled.get();
    }

    /** Requests prefilled so far between two layers of a decode step. */
    long admittedInsideStepsCount() {
        return admittedInsideSteps.get();
    }

    /** Tokens generated so far, for all requests. */
    long generatedCount() {
        return generated.get();
    }

    Load load() {
        synchronized (waiting) {
            return new Load(waiting.size(), running);
        }
    }

    /** A rough wait for a refused client: one batch's worth of work ahead of it, at least a second. */
    int retryAfterSeconds() {
        return Math.max(1, load().waiting() / Math.max(1, maxBatch));
    }

    private synchronized void ensureStarted() {
        if (worker != null) return;
        worker = new Thread(this::loop, "prefloop-generate");
        worker.setDaemon(true);
        worker.start();
    }

    private void loop() {
        // Gradient mode is per thread and on in a new one: generation must not build graphs.
        JniUtils.setGradMode(false);
        ModelHost.Base current = null;
        DecodeBatch batch = null;
        List<Job> jobs = new ArrayList<>(); // the batch's jobs, by the listener that reports for them
        while (!stopped) {
            List<Queued> newcomers;
            try {
                if (batch == null || batch.isEmpty()) {
                    if (batch != null) batch.close();
                    batch = null;
                    current = null;
                    jobs.clear();
                }
                newcomers = take(current, batch);
                if (newcomers.isEmpty() && batch == null) continue;
                if (batch == null) {
                    current = newcomers.get(0).job.model().base();
                    batch = newBatch(current, jobs);
                    current.generator().prefixCache().setBudgetBytes(Math.min(prefixCacheMb, kvCacheMb) * 1024 * 1024);
                }
            } catch (InterruptedException e) {
                return;
            }
            try {
                synchronized (current) {
                    if (!newcomers.isEmpty()) {
                        admit(batch, current, newcomers, jobs);
                        workEnded();
                        // those that arrived while that prefill ran are prefilled now, before the step: a burst
                        // of arrivals waits for at most two prefills for its first tokens, not a prefill and a step each
                        List<Queued> arrived = batch.isEmpty() ? List.of() : takeArrived(current, batch);
                        if (!arrived.isEmpty()) {
                            admit(batch, current, arrived, jobs);
                            workEnded();
                        }
                    }
                    if (!batch.isEmpty()) {
                        batchSizes.record(batch.size());
                        batchVersions.record(jobs.stream().map(j -> j.model().name()).distinct().count());
                        long t = System.nanoTime();
                        prefillsInStep = 0;
                        batch.step();
                        firstTokens.step(System.nanoTime() - t);
                        workEnded();
                    }
                    running = batch.size();
                }
            } catch (RuntimeException e) {
                LOG.warnf(e, "generation failed for a batch of %d", jobs.size());
                for (Job j : jobs) {
                    j.model().releaseAdapter();
                    j.sink().failed(e);
                }
                jobs.clear();
                batch.close();
                batch = null;
                running = 0;
            }
        }
    }

    /**
     * A batch on {@code base}. Requests that arrive while it steps are admitted between two of
     * the step's layers ({@code prefloop.serve.prefills-inside-step} passes a step at most): their
     * first token does not wait for the rest of the step.
     */
    private DecodeBatch newBatch(ModelHost.Base base, List<Job> jobs) {
        DecodeBatch batch = base.generator().newBatch();
        batch.setPrefillChunk(prefillChunk);
        if (prefillsInsideStep > 0) {
            batch.setBetweenLayers(() -> {
                if (prefillsInStep >= prefillsInsideStep) return; // the step's own rows wait for no more prefills than that
                List<Queued> arrived = takeArrived(base, batch);
                if (arrived.isEmpty()) return;
                prefillsInStep++;
                admittedInsideSteps.addAndGet(arrived.size());
                admit(batch, base, arrived, jobs);
            });
        }
        return batch;
    }

    /** Adds the jobs to the batch, each on its version's adapter (one that no longer loads fails its own job only). */
    private void admit(DecodeBatch batch, ModelHost.Base current, List<Queued> newcomers, List<Job> jobs) {
        List<DecodeBatch.Request> requests = new ArrayList<>();
        for (Queued q : newcomers) {
            Job j = q.job;
            ProjectionHook adapter;
            try {
                adapter = j.model().acquireAdapter();
            } catch (RuntimeException e) {
                j.sink().failed(e);
                continue;
            }
            requests.add(new DecodeBatch.Request(j.prompt(), j.params(), 0, listener(q, jobs), adapter));
            jobs.add(j);
        }
        long reusedBefore = current.generator().prefixCache().tokensReused();
        batch.admit(requests);
        prefixReused.addAndGet(current.generator().prefixCache().tokensReused() - reusedBefore);
    }

    /** What {@link #take} gives a running batch now, without waiting. */
    private List<Queued> takeArrived(ModelHost.Base current, DecodeBatch batch) {
        try {
            return take(current, batch); // a batch that is not empty never waits
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return List.of();
        }
    }

    /** Marks the end of a step or prefill for the queued jobs that arrived while it ran. */
    private void workEnded() {
        long now = System.nanoTime();
        synchronized (waiting) {
            for (Queued q : waiting) if (q.workEnded == 0) q.workEnded = now;
        }
    }

    private DecodeBatch.Listener listener(Queued queued, List<Job> jobs) {
        Job job = queued.job;
        return new DecodeBatch.Listener() {
            DecodeBatch.Prefilled prefilled;

            public void onToken(long tokenId, String textDelta) {
                onToken(tokenId, textDelta, null);
            }

            public void onPrefilled(DecodeBatch.Prefilled p) {
                prefilled = p;
            }

            public void onToken(long tokenId, String textDelta, TokenLogprobs logprobs) {
                generated.incrementAndGet();
                job.sink().token(textDelta, logprobs);
                if (prefilled != null) { // the first token
                    firstTokens.record(queued.offered, queued.workEnded, queued.taken, prefilled, System.nanoTime(), textDelta.isEmpty());
                    prefilled = null;
                }
            }

            public int topLogprobs() {
                return job.sink().topLogprobs();
            }

            public void onDone(Generator.Completion completion) {
                // a job leaves the list once: here, or when a failed batch already answered it
                if (!jobs.remove(job)) return;
                job.model().releaseAdapter();
                if (completion.finishReason().equals("cancelled")) {
                    cancelled.incrementAndGet();
                    job.sink().failed(new CancellationException("the client went away"));
                } else {
                    job.sink().done(completion);
                }
            }

            public boolean cancelled() {
                return job.sink().cancelled();
            }
        };
    }

    /**
     * The waiting jobs that join now, in arrival order: same base as the running batch, room
     * in the batch, and room in the KV cache budget for their prompt plus max tokens. Jobs whose
     * client went away are dropped. With nothing running and nothing waiting it waits a while.
     */
    private List<Queued> take(ModelHost.Base current, DecodeBatch batch) throws InterruptedException {
        List<Queued> out = new ArrayList<>();
        synchronized (waiting) {
            for (Iterator<Queued> it = waiting.iterator(); it.hasNext(); ) {
                Job j = it.next().job;
                if (j.sink().cancelled()) {
                    it.remove();
                    cancelled.incrementAndGet();
                    j.sink().failed(new CancellationException("the client went away"));
                }
            }
            if (waiting.isEmpty() && (batch == null || batch.isEmpty())) {
                waiting.wait(200);
                return out;
            }
            int size = batch == null ? 0 : batch.size();
            int longest = batch == null ? 0 : batch.longestReservation();
            long budget = kvCacheMb * 1024 * 1024 - (current == null ? 0 : current.generator().prefixCache().bytes());
            ModelHost.Base base = current;
            long now = System.nanoTime();
            while (!waiting.isEmpty() && size + out.size() < maxBatch) {
                Queued q = waiting.peekFirst();
                Job j = q.job;
                if (base != null && j.model().base() != base) break; // another base waits for this batch to drain
                int reservation = j.prompt().length + j.params().maxTokens();
                long bytesPerToken = j.model().base().generator().kvBytesPerToken();
                long need = (long) (size + out.size() + 1) * Math.max(longest, reservation) * bytesPerToken;
                // the first sequence always runs: a budget below one full context would refuse it forever
                if (need > budget && size + out.size() > 0) break;
                waiting.pollFirst();
                q.taken = now;
                if (q.workEnded == 0) q.workEnded = now; // it arrived while the engine was between steps
                out.add(q);
                base = j.model().base();
                longest = Math.max(longest, reservation);
            }
            running = size + out.size(); // taken jobs count as running at once: load() never shows a job in transit as idle
            waiting.notifyAll();
        }
        return out;
    }

    void stop(@Observes ShutdownEvent event) {
        stopped = true;
        Thread t = worker;
        if (t != null) t.interrupt();
    }
}
