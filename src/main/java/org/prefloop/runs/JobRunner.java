package org.prefloop.runs;

import org.prefloop.platform.Settings;
import org.prefloop.registry.ModelVersion;
import org.prefloop.platform.KafkaClients;

import ai.djl.pytorch.jni.JniUtils;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;
import org.prefloop.train.AlignmentRun;
import org.prefloop.train.Preflight;
import org.prefloop.train.RunCancelledException;
import org.prefloop.train.RunListener;
import org.prefloop.train.RunSpec;

import java.nio.file.Path;
import java.time.OffsetDateTime;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;

/**
 * Runs one training job on this worker: prepares the spec, trains (resuming from the run's
 * checkpoint if an earlier attempt left one), publishes progress to {@code training-events},
 * and on success registers the new model version with its lineage. A failure marks the run
 * failed with the reason and leaves the served model alone.
 */
@ApplicationScoped
public class JobRunner {
    private static final Logger LOG = Logger.getLogger(JobRunner.class);

    @Inject
    RunPreparation preparation;
    @Inject
    KafkaClients kafka;
    @Inject
    ObjectMapper json;
    @Inject
    MeterRegistry registry;
    @Inject
    Kubeflow kubeflow;
    @Inject
    Settings settings;

    /** Latest training metrics per run, for the Micrometer gauges. */
    private final Map<String, Double> gauges = new ConcurrentHashMap<>();

    /** How a job ended on this worker. */
    public enum Outcome { SUCCEEDED, FAILED, CANCELLED, RELEASED }

    /**
     * @param stop true when the job must stop: cancelled by a user, or this worker shutting down or losing its lease
     * @param cancelRequested tells the two apart once stopped
     */
    public Outcome run(long runId, String worker, BooleanSupplier stop, BooleanSupplier cancelRequested) {
        TrainingRun run = QuarkusTransaction.requiringNew().call(() -> TrainingRun.<TrainingRun>findById(runId));
        publish(RunEvent.status(runId, TrainingRun.RUNNING, "taken by " + worker + " (attempt " + run.attempts + ")"));
        try {
            ai.djl.engine.Engine.getEngine("PyTorch"); // loads the native library before the first native call on this thread
            JniUtils.setGradMode(false);
            RunPreparation.Prepared p = preparation.prepare(RunSpec.parse(run.spec), runDir(Path.of(settings.runsDir()), run));
            QuarkusTransaction.requiringNew().run(() -> {
                TrainingRun r = TrainingRun.findById(runId);
                r.parentVersionId = p.parentVersionId();
                r.datasetHashes = write(p.datasetHashes());
            });
            String executor = p.spec().executor() != null ? p.spec().executor() : settings.executor();
            if (executor.equals("djl") && p.spec().accelerate() != null) {
                throw new IllegalArgumentException("accelerate: the djl executor trains in one process; use executor: trl or kubeflow");
            }
            Map<String, Object> summary = switch (executor) {
                case "djl" -> train(p, listener(runId), stop);
                case "trl" -> new TrlExecutor(settings.trl().python()).run(p.spec(), p.dir(), listener(runId), stop);
                case "kubeflow" -> kubeflow.executor().run(p.spec(), p.dir(), listener(runId), stop, cancelRequested);
                default -> throw new IllegalArgumentException("unknown executor '" + executor + "' (PREFLOOP_EXECUTOR is djl, trl or kubeflow)");
            };
            summary.put("executor", executor);
            long versionId = register(run, p, summary);
            QuarkusTransaction.requiringNew().run(() -> {
                TrainingRun r = TrainingRun.findById(runId);
                r.status = TrainingRun.SUCCEEDED;
                r.finishedAt = OffsetDateTime.now();
                r.summary = write(summary);
                r.modelVersionId = versionId;
                r.worker = null;
                r.leaseUntil = null;
            });
            publish(RunEvent.status(runId, TrainingRun.SUCCEEDED, "registered model version " + versionId));
            return Outcome.SUCCEEDED;
        } catch (RunCancelledException e) {
            if (cancelRequested.getAsBoolean()) {
                finish(runId, TrainingRun.CANCELLED, e.getMessage());
                return Outcome.CANCELLED;
            }
            LOG.infof("Run %d released (%s); another attempt resumes it from its checkpoint", runId, e.getMessage());
            QuarkusTransaction.requiringNew().run(() -> TrainingRun.update("worker = null, leaseUntil = null where id = ?1 and worker = ?2", runId, worker));
            return Outcome.RELEASED;
        } catch (RuntimeException | Error e) {
            String reason = e instanceof OutOfMemoryError ? "out of memory: " + e.getMessage() : e.getMessage();
            LOG.errorf(e, "Run %d failed", runId);
            finish(runId, TrainingRun.FAILED, reason == null ? e.getClass().getSimpleName() : reason);
            return Outcome.FAILED;
        }
    }

    /** The DJL executor: the pre-flight on the resolved spec (the submit's ran on a check-only copy), then the run on what it read. */
    private static Map<String, Object> train(RunPreparation.Prepared p, RunListener listener, BooleanSupplier stop) {
        try (Preflight.Checked checked = Preflight.prepare(p.spec(), p.dir())) {
            return new AlignmentRun(checked, listener, stop).run();
        }
    }

    /** The run's own directory; the creation time in its name keeps a reused id (a store reset, a data dir kept) from finding old files. */
    static Path runDir(Path runsDir, TrainingRun run) {
        return runsDir.resolve(run.id + "-" + run.createdAt.toEpochSecond());
    }

    private void finish(long runId, String status, String message) {
        QuarkusTransaction.requiringNew().run(() -> {
            TrainingRun r = TrainingRun.findById(runId);
            r.status = status;
            r.error = status.equals(TrainingRun.FAILED) ? message : null;
            r.finishedAt = OffsetDateTime.now();
            r.worker = null;
            r.leaseUntil = null;
        });
        publish(RunEvent.status(runId, status, message));
    }

    /** Registers the run's model: the parent's base with the DPO adapter for a LoRA DPO-only run, else the full aligned checkpoint. */
    private long register(TrainingRun run, RunPreparation.Prepared p, Map<String, Object> summary) {
        return QuarkusTransaction.requiringNew().call(() -> {
            ModelVersion existing = ModelVersion.find("runId", run.id).firstResult();
            if (existing != null) return existing.id;
            ModelVersion v = new ModelVersion();
            v.name = run.name + "-r" + run.id;
            v.parentId = p.parentVersionId();
            v.runId = run.id;
            // the output layout is the executor's: read from the run's summary, not rebuilt here
            // a LoRA preference stage (dpo, or kto, which is LoRA only) without SFT: the parent's base plus that adapter
            String preference = p.spec().dpo() != null ? "dpo" : "kto";
            boolean adapterOnly = p.spec().sft() == null
                    && ((p.spec().dpo() != null && p.spec().dpo().training().usePeft()) || p.spec().kto() != null);
            v.baseModel = adapterOnly ? Path.of(p.spec().modelNameOrPath()).toAbsolutePath().toString() : absolute(summary.get("model"), "model");
            v.adapterPath = adapterOnly ? absolute(summary.get(preference) instanceof Map<?, ?> st ? st.get("adapter") : null, preference + ".adapter") : null;
            v.datasetHashes = write(p.datasetHashes().values());
            v.runSpec = run.spec;
            Map<String, Object> metrics = new LinkedHashMap<>();
            for (String stage : new String[]{"sft", "dpo", "kto"}) if (summary.get(stage) instanceof Map<?, ?> s) metrics.put(stage, s);
            v.metrics = write(metrics);
            v.forgetting = summary.containsKey("forgetting") ? write(summary.get("forgetting")) : null;
            v.persist();
            return v.id;
        });
    }

    private static String absolute(Object summaryPath, String key) {
        if (!(summaryPath instanceof String path)) throw new IllegalStateException("the run's summary has no " + key);
        return Path.of(path).toAbsolutePath().toString();
    }

    private RunListener listener(long runId) {
        return new RunListener() {
            @Override
            public void stageStarted(String stage, int totalSteps) {
                publish(new RunEvent(runId, RunEvent.STAGE, stage, 0, totalSteps, null, null, null));
            }

            @Override
            public void step(String stage, int step, int totalSteps, Map<String, Double> metrics) {
                publish(new RunEvent(runId, RunEvent.METRICS, stage, step, totalSteps, metrics, null, null));
                gauge(runId, stage, "loss", metrics.get("loss"));
                gauge(runId, stage, "tokens_per_second", metrics.get("tokens_per_second"));
                if (metrics.containsKey("rewards/accuracies")) gauge(runId, stage, "reward_accuracy", metrics.get("rewards/accuracies"));
            }

            @Override
            public void evaluated(String stage, int step, Map<String, Double> metrics) {
                publish(new RunEvent(runId, RunEvent.METRICS, stage, step, null, metrics, null, null));
            }

            @Override
            public void checkpointed(String stage, int step) {
                publish(new RunEvent(runId, RunEvent.CHECKPOINT, stage, step, null, null, null, null));
            }

            @Override
            public void message(String text) {
                publish(new RunEvent(runId, RunEvent.MESSAGE, null, null, null, null, null, text));
            }
        };
    }

    /** prefloop_training_loss / _tokens_per_second / _reward_accuracy, tagged by run and stage. */
    private void gauge(long runId, String stage, String name, Double value) {
        if (value == null) return;
        String key = runId + "/" + stage + "/" + name;
        if (gauges.put(key, value) == null) {
            registry.gauge("prefloop.training." + name, java.util.List.of(io.micrometer.core.instrument.Tag.of("run", String.valueOf(runId)),
                    io.micrometer.core.instrument.Tag.of("stage", stage)), gauges, g -> g.getOrDefault(key, Double.NaN));
        }
    }

    void publish(RunEvent event) {
        try {
            kafka.send(KafkaClients.EVENTS, String.valueOf(event.runId()), json.writeValueAsString(event));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        } catch (IllegalStateException e) {
            LOG.warnf("Could not publish a training event of run %d: %s", event.runId(), e.getMessage());
        }
    }

    private String write(Object value) {
        try {
            return json.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
