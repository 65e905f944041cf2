package org.prefloop.serve;

import ai.djl.pytorch.jni.JniUtils;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;
import org.prefloop.model.Generator;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Runs generation on one thread and batches concurrent requests: requests for the same
 * version with the same sampling settings that arrive within {@code prefloop.serve.batch-window-ms}
 * of each other share one forward pass per token, up to {@code prefloop.serve.max-batch}.
 * The model is compute-bound, so one thread with wide batches beats many threads with one
 * sequence each.
 */
@ApplicationScoped
public class BatchScheduler {
    private static final Logger LOG = Logger.getLogger(BatchScheduler.class);

    /** Receives one request's output as it is generated. */
    interface Sink {
        void delta(String text);

        void done(Generator.Completion completion);

        void failed(Throwable error);
    }

    record Job(ModelHost.Resolved model, long[] prompt, Generator.GenerationParams params, Sink sink) {
        /** Jobs with equal keys can share a batch. */
        String key() {
            return model.name() + "|" + params.maxTokens() + "|" + params.temperature() + "|" + params.topP() + "|" + params.topK()
                    + "|" + params.repetitionPenalty() + "|" + params.seed() + "|" + params.stop() + "|" + Arrays.toString(params.stopTokenIds());
        }
    }

    @ConfigProperty(name = "prefloop.serve.max-batch", defaultValue = "8")
    int maxBatch;

    @ConfigProperty(name = "prefloop.serve.batch-window-ms", defaultValue = "5")
    int batchWindowMs;

    private final LinkedBlockingQueue<Job> queue = new LinkedBlockingQueue<>();
    private final DistributionSummary batchSizes;

    @jakarta.inject.Inject
    BatchScheduler(MeterRegistry registry) {
        batchSizes = DistributionSummary.builder("prefloop.serve.batch.size")
                .description("requests that shared one generation batch").register(registry);
    }

    private final Deque<Job> deferred = new ArrayDeque<>();
    private volatile Thread worker;
    private volatile boolean running = true;

    void submit(Job job) {
        ensureStarted();
        queue.add(job);
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
        while (running) {
            try {
                Job first = deferred.isEmpty() ? queue.poll(200, TimeUnit.MILLISECONDS) : deferred.pollFirst();
                if (first == null) continue;
                List<Job> batch = gather(first);
                run(batch);
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                LOG.error("generation loop error", e);
            }
        }
    }

    /** The first job plus waiting jobs that can share its batch; others wait their turn in order. */
    private List<Job> gather(Job first) throws InterruptedException {
        List<Job> batch = new ArrayList<>(List.of(first));
        String key = first.key();
        List<Job> keep = new ArrayList<>();
        for (Job j : deferred) if (batch.size() < maxBatch && j.key().equals(key)) batch.add(j); else keep.add(j);
        deferred.clear();
        deferred.addAll(keep);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(batchWindowMs);
        while (batch.size() < maxBatch) {
            long left = deadline - System.nanoTime();
            Job j = left > 0 ? queue.poll(left, TimeUnit.NANOSECONDS) : queue.poll();
            if (j == null) break;
            if (j.key().equals(key)) batch.add(j); else deferred.addLast(j);
        }
        return batch;
    }

    private void run(List<Job> batch) {
        ModelHost.Resolved model = batch.get(0).model();
        batchSizes.record(batch.size());
        try {
            List<long[]> prompts = batch.stream().map(Job::prompt).toList();
            List<Generator.Completion> done;
            // One thread runs batches, so the hook set here belongs to this batch alone.
            synchronized (model.base()) {
                model.base().model().setProjectionHook(model.adapter());
                done = model.base().generator().generate(prompts, batch.get(0).params(),
                        (seq, token, delta) -> {
                            if (!delta.isEmpty()) batch.get(seq).sink().delta(delta);
                        });
            }
            for (int i = 0; i < batch.size(); i++) batch.get(i).sink().done(done.get(i));
        } catch (RuntimeException e) {
            LOG.warnf("generation failed for a batch of %d: %s", batch.size(), e.getMessage());
            batch.forEach(j -> j.sink().failed(e));
        }
    }

    void stop(@Observes ShutdownEvent event) {
        running = false;
        Thread t = worker;
        if (t != null) t.interrupt();
    }
}
