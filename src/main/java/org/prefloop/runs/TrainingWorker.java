package org.prefloop.runs;

import org.prefloop.platform.KafkaClients;
import org.prefloop.platform.Settings;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.jboss.logging.Logger;
import org.prefloop.platform.Roles;

import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The worker role: takes jobs from {@code training-jobs} in the consumer group
 * {@code prefloop-workers}, one at a time. Kafka hands each partition to one worker; on top of
 * that a run is held under a lease in the database, renewed while it trains, so a job is never
 * run twice at once even across a rebalance. While a job runs the consumer keeps polling with its
 * partitions paused (staying in the group); the job's offset is committed only when it ended, so
 * a worker killed mid-run leaves the job to be taken again, and the next attempt resumes from
 * the checkpoint once the dead worker's lease has run out.
 */
@ApplicationScoped
public class TrainingWorker {
    private static final Logger LOG = Logger.getLogger(TrainingWorker.class);

    @Inject
    JobRunner runner;
    @Inject
    Roles roles;
    int leaseSeconds;

    @Inject
    void configure(Settings settings) {
        leaseSeconds = settings.worker().leaseSeconds();
    }

    private final String id = "worker-" + UUID.randomUUID().toString().substring(0, 8);
    private final AtomicBoolean running = new AtomicBoolean();
    private final ExecutorService jobs = Executors.newSingleThreadExecutor(r -> new Thread(r, "prefloop-training-job"));
    private volatile KafkaConsumer<String, String> consumer;
    private Thread thread;

    void start(@Observes StartupEvent event) {
        if (!roles.has("worker")) return;
        running.set(true);
        thread = new Thread(this::loop, "prefloop-training-worker");
        thread.start();
        LOG.infof("Training worker %s takes jobs from %s", id, KafkaClients.JOBS);
    }

    private void loop() {
        consumer = KafkaClients.consumer("prefloop-workers", "earliest", Map.of(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 1));
        try (KafkaConsumer<String, String> c = consumer) {
            c.subscribe(List.of(KafkaClients.JOBS));
            while (running.get()) {
                ConsumerRecords<String, String> records = c.poll(Duration.ofSeconds(1));
                for (ConsumerRecord<String, String> record : records) handle(c, record);
            }
        } catch (WakeupException e) {
            // shutting down
        } catch (RuntimeException e) {
            LOG.error("The training worker stopped", e);
        }
    }

    private void handle(KafkaConsumer<String, String> c, ConsumerRecord<String, String> record) {
        TopicPartition tp = new TopicPartition(record.topic(), record.partition());
        long runId;
        try {
            runId = Long.parseLong(record.value().trim());
        } catch (NumberFormatException e) {
            LOG.warnf("Skipping a training job that is not a run id: %s", record.value());
            commit(c, tp, record.offset());
            return;
        }
        switch (claim(runId)) {
            case GONE -> commit(c, tp, record.offset());
            case HELD -> {
                // another worker holds it (or held it and died): look again once its lease may have run out
                c.seek(tp, record.offset());
                pauseFor(c, Duration.ofSeconds(Math.max(1, leaseSeconds / 2)));
            }
            case TAKEN -> {
                train(c, runId);
                if (running.get()) commit(c, tp, record.offset());
            }
        }
    }

    private void train(KafkaConsumer<String, String> c, long runId) {
        AtomicBoolean leaseLost = new AtomicBoolean();
        CancelFlag cancel = new CancelFlag(runId);
        Future<JobRunner.Outcome> job = jobs.submit(() -> runner.run(runId, id,
                () -> !running.get() || leaseLost.get() || cancel.requested(), cancel::requested));
        long renewEvery = Math.max(1000, leaseSeconds * 1000L / 3);
        long lastRenewal = System.currentTimeMillis();
        while (!job.isDone()) {
            c.pause(c.assignment());
            ConsumerRecords<String, String> stray = c.poll(Duration.ofMillis(500));
            for (ConsumerRecord<String, String> r : stray) c.seek(new TopicPartition(r.topic(), r.partition()), r.offset());
            if (System.currentTimeMillis() - lastRenewal >= renewEvery) {
                lastRenewal = System.currentTimeMillis();
                if (!renew(runId)) leaseLost.set(true);
            }
        }
        c.resume(c.assignment());
        try {
            LOG.infof("Run %d: %s", runId, job.get());
        } catch (Exception e) {
            LOG.errorf(e, "Run %d ended with an error", runId);
        }
    }

    enum Claim { TAKEN, HELD, GONE }

    /** Takes the run's lease if it is unfinished and nobody holds a live lease on it. */
    Claim claim(long runId) {
        return QuarkusTransaction.requiringNew().call(() -> {
            TrainingRun r = TrainingRun.findById(runId);
            if (r == null || r.finished()) return Claim.GONE;
            if (r.cancelRequested && r.status.equals(TrainingRun.QUEUED)) return Claim.GONE;
            OffsetDateTime now = OffsetDateTime.now();
            if (r.worker != null && !r.worker.equals(id) && r.leaseUntil != null && r.leaseUntil.isAfter(now)) return Claim.HELD;
            int updated = TrainingRun.update("worker = ?1, leaseUntil = ?2, status = ?3, attempts = attempts + 1, "
                            + "startedAt = coalesce(startedAt, ?4) where id = ?5 and (worker is null or worker = ?1 or leaseUntil < ?4)",
                    id, now.plusSeconds(leaseSeconds), TrainingRun.RUNNING, now, runId);
            return updated == 1 ? Claim.TAKEN : Claim.HELD;
        });
    }

    private boolean renew(long runId) {
        return QuarkusTransaction.requiringNew().call(() -> TrainingRun.update("leaseUntil = ?1 where id = ?2 and worker = ?3",
                OffsetDateTime.now().plusSeconds(leaseSeconds), runId, id)) == 1;
    }

    private void pauseFor(KafkaConsumer<String, String> c, Duration wait) {
        long until = System.nanoTime() + wait.toNanos();
        c.pause(c.assignment());
        while (running.get() && System.nanoTime() < until) c.poll(Duration.ofMillis(200));
        c.resume(c.assignment());
    }

    private static void commit(KafkaConsumer<String, String> c, TopicPartition tp, long offset) {
        try {
            c.commitSync(Map.of(tp, new OffsetAndMetadata(offset + 1)));
        } catch (RuntimeException e) {
            LOG.warnf("Could not commit the job offset %s@%d (%s); the job's status decides when it comes back", tp, offset, e.getMessage());
        }
    }

    /** Reads the run's cancel flag from the database at most every two seconds. */
    private static final class CancelFlag {
        private final long runId;
        private long checkedAt;
        private volatile boolean requested;

        CancelFlag(long runId) {
            this.runId = runId;
        }

        boolean requested() {
            long now = System.currentTimeMillis();
            if (!requested && now - checkedAt > 2000) {
                checkedAt = now;
                requested = QuarkusTransaction.requiringNew().call(() -> {
                    TrainingRun r = TrainingRun.findById(runId);
                    return r != null && r.cancelRequested;
                });
            }
            return requested;
        }
    }

    void stop(@Observes ShutdownEvent event) {
        if (!running.getAndSet(false)) return;
        jobs.shutdown();
        try {
            if (thread != null) thread.join(30_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
