package org.prefloop.runs;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder;
import io.fabric8.kubernetes.api.model.DeletionPropagation;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import org.prefloop.train.Accelerate;
import org.prefloop.train.RunCancelledException;
import org.prefloop.train.RunListener;
import org.prefloop.train.RunSpec;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

/**
 * The {@code kubeflow} executor: the run's TRL program runs as a Kubeflow Trainer
 * {@code TrainJob} (trainer.kubeflow.org/v1alpha1) on N nodes × G GPUs, referencing a
 * {@code ClusterTrainingRuntime} that holds the image and the {@code accelerate launch} command
 * (k8s/overlays/kubeflow). The worker writes the resolved spec, this build's script and the
 * accelerate config into the run's directory on the model store (mounted at the same path in
 * the runtime's pods), creates the TrainJob, and follows it: its status (pending, running,
 * succeeded, failed with the reason) and the progress events RANK 0 appends to a file beside
 * the spec, passed to the {@link RunListener} as the {@code trl} executor passes its child's.
 *
 * <p>The TrainJob's name comes from the run's directory (id and creation time), so an attempt
 * that finds it already there follows it instead of submitting a second one: a worker that
 * loses its lease or shuts down leaves the TrainJob running for the next holder of the lease,
 * and only a cancel deletes it.
 */
public final class KubeflowExecutor {
    public static final String API_VERSION = "trainer.kubeflow.org/v1alpha1";
    public static final String KIND = "TrainJob";
    static final ResourceDefinitionContext TRAIN_JOBS = new ResourceDefinitionContext.Builder()
            .withGroup("trainer.kubeflow.org").withVersion("v1alpha1").withKind(KIND).withPlural("trainjobs").withNamespaced(true).build();
    static final String EVENTS_FILE = "trl-events.jsonl";
    /** Kueue admits a TrainJob labelled with the LocalQueue to queue it in. */
    static final String QUEUE_LABEL = "kueue.x-k8s.io/queue-name";
    static final String RUN_LABEL = "prefloop.org/run";

    /**
     * @param namespace where TrainJobs are created (the worker's own; its RBAC allows nothing else)
     * @param runtime   the ClusterTrainingRuntime's name
     * @param queue     the Kueue LocalQueue, or null where Kueue is not installed
     * @param image     an image that replaces the runtime's, or null
     * @param poll      how often the TrainJob's status and the events file are read
     * @param apiErrorsFor how long the Kubernetes API may fail in a row before the run fails
     */
    public record Settings(String namespace, String runtime, String queue, String image, Duration poll, Duration apiErrorsFor) {
    }

    /** The TrainJob's state as PrefLoop reports it. */
    public enum State { PENDING, RUNNING, SUCCEEDED, FAILED }

    public record Status(State state, String detail) {
        String describe() {
            return state.name().toLowerCase() + (detail == null || detail.isBlank() ? "" : " (" + detail + ")");
        }
    }

    private final KubernetesClient client;
    private final Settings settings;

    public KubeflowExecutor(KubernetesClient client, Settings settings) {
        this.client = client;
        this.settings = settings;
    }

    /**
     * Runs the spec as a TrainJob and returns the summary it wrote.
     *
     * @param stop            true when this worker must stop following (a cancel, a shutdown or a lost lease)
     * @param cancelRequested true for a cancel: then the TrainJob is deleted; otherwise it is left for the next attempt
     */
    public Map<String, Object> run(RunSpec spec, Path dir, RunListener listener, BooleanSupplier stop, BooleanSupplier cancelRequested) {
        try {
            Accelerate accelerate = spec.accelerate() != null ? spec.accelerate() : new Accelerate();
            TrlExecutor.RunFiles files = TrlExecutor.prepare(spec, dir, accelerate);
            String name = jobName(files.runDir());
            Path events = files.runDir().resolve(EVENTS_FILE);
            GenericKubernetesResource existing = jobs().withName(name).get();
            if (existing != null) {
                listener.message("following TrainJob " + name + ", submitted by an earlier attempt");
            } else {
                Files.deleteIfExists(events);
                try {
                    jobs().resource(trainJob(name, spec, accelerate, files, events)).create();
                    listener.message("submitted TrainJob " + name + " in namespace " + settings.namespace() + ": "
                            + accelerate.numMachines + " node(s) x " + accelerate.processesPerMachine() + " GPU(s), runtime " + settings.runtime()
                            + (settings.queue() == null ? "" : ", Kueue queue " + settings.queue()));
                } catch (KubernetesClientException e) {
                    if (e.getCode() != 409) throw new IllegalStateException("could not create TrainJob " + name + ": " + reason(e));
                    listener.message("following TrainJob " + name + ", submitted at the same time by another attempt");
                }
            }
            return follow(name, files, events, listener, stop, cancelRequested);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private Map<String, Object> follow(String name, TrlExecutor.RunFiles files, Path events, RunListener listener,
                                       BooleanSupplier stop, BooleanSupplier cancelRequested) throws IOException {
        TrlExecutor.Events parsed = new TrlExecutor.Events(listener);
        EventTail tail = new EventTail(events);
        Status reported = null;
        long failingSince = 0;
        while (true) {
            tail.read(parsed);
            if (stop.getAsBoolean()) {
                if (cancelRequested.getAsBoolean()) {
                    delete(name);
                    listener.message("deleted TrainJob " + name);
                }
                throw new RunCancelledException(parsed.stage.get(), parsed.step.get());
            }
            GenericKubernetesResource job;
            try {
                job = jobs().withName(name).get();
                failingSince = 0;
            } catch (KubernetesClientException e) {
                // the API server restarting must not fail a day-long run; a cluster gone for good does
                if (failingSince == 0) failingSince = System.nanoTime();
                if (System.nanoTime() - failingSince > settings.apiErrorsFor().toNanos()) {
                    throw new IllegalStateException("the Kubernetes API did not answer about TrainJob " + name + " for "
                            + settings.apiErrorsFor().toSeconds() + " s: " + reason(e));
                }
                sleep();
                continue;
            }
            if (job == null) throw new IllegalStateException("TrainJob " + name + " was deleted outside PrefLoop");
            Status status = status(job);
            if (!status.equals(reported)) {
                listener.message("TrainJob " + name + ": " + status.describe());
                reported = status;
            }
            switch (status.state()) {
                case SUCCEEDED -> {
                    tail.read(parsed);
                    return TrlExecutor.summary(files.outputDir(), "TrainJob " + name);
                }
                case FAILED -> {
                    tail.read(parsed);
                    String own = parsed.failure.get(); // the program's reason (bad data, NaN loss) beats the Job controller's
                    throw new IllegalStateException(own != null ? own : "TrainJob " + name + " failed: " + status.detail());
                }
                default -> sleep();
            }
        }
    }

    /** Deletes the TrainJob and, through foreground propagation, its JobSet and pods. */
    void delete(String name) {
        try {
            jobs().withName(name).withPropagationPolicy(DeletionPropagation.FOREGROUND).delete();
        } catch (KubernetesClientException e) {
            if (e.getCode() != 404) throw new IllegalStateException("could not delete TrainJob " + name + ": " + reason(e));
        }
    }

    private io.fabric8.kubernetes.client.dsl.NonNamespaceOperation<GenericKubernetesResource, io.fabric8.kubernetes.api.model.GenericKubernetesResourceList,
            io.fabric8.kubernetes.client.dsl.Resource<GenericKubernetesResource>> jobs() {
        return client.genericKubernetesResources(TRAIN_JOBS).inNamespace(settings.namespace());
    }

    /** prefloop-run-&lt;id&gt;-&lt;creation time&gt;: the run's directory name, an RFC 1035 label. */
    static String jobName(Path runDir) {
        return "prefloop-run-" + runDir.getFileName().toString().toLowerCase().replaceAll("[^a-z0-9-]", "-");
    }

    /** The TrainJob: the runtime by reference, N nodes of G GPUs, and the run's files by absolute path on the model store. */
    GenericKubernetesResource trainJob(String name, RunSpec spec, Accelerate a, TrlExecutor.RunFiles files, Path events) {
        Map<String, String> labels = new LinkedHashMap<>();
        labels.put("app.kubernetes.io/managed-by", "prefloop");
        labels.put(RUN_LABEL, files.runDir().getFileName().toString());
        if (settings.queue() != null && !settings.queue().isBlank()) labels.put(QUEUE_LABEL, settings.queue());
        List<Map<String, String>> env = new ArrayList<>();
        env.add(Map.of("name", "PREFLOOP_SPEC", "value", files.spec().toString()));
        env.add(Map.of("name", "PREFLOOP_SCRIPT", "value", files.script().toString()));
        env.add(Map.of("name", "PREFLOOP_ACCELERATE_CONFIG", "value", files.accelerateConfig().toString()));
        env.add(Map.of("name", "PREFLOOP_EVENTS", "value", events.toString()));
        Map<String, Object> gpus = Map.of("nvidia.com/gpu", String.valueOf(a.processesPerMachine()));
        Map<String, Object> trainer = new LinkedHashMap<>();
        if (settings.image() != null && !settings.image().isBlank()) trainer.put("image", settings.image());
        trainer.put("numNodes", a.numMachines);
        trainer.put("numProcPerNode", a.processesPerMachine());
        trainer.put("resourcesPerNode", Map.of("requests", gpus, "limits", gpus));
        trainer.put("env", env);
        Map<String, Object> jobSpec = new LinkedHashMap<>();
        jobSpec.put("runtimeRef", Map.of("name", settings.runtime(), "apiGroup", "trainer.kubeflow.org", "kind", "ClusterTrainingRuntime"));
        jobSpec.put("trainer", trainer);
        return new GenericKubernetesResourceBuilder().withApiVersion(API_VERSION).withKind(KIND)
                .withNewMetadata().withName(name).withNamespace(settings.namespace()).withLabels(labels)
                .addToAnnotations("prefloop.org/spec-name", spec.name()).endMetadata()
                .withAdditionalProperties(Map.of("spec", jobSpec)).build();
    }

    /**
     * The TrainJob's state from its status: a true Failed or Complete condition ends it;
     * Suspended (Kueue holding it for quota) and no ready child Job yet are pending; a ready
     * child Job (every pod of a node group running) is running.
     */
    @SuppressWarnings("unchecked")
    static Status status(GenericKubernetesResource job) {
        Map<String, Object> status = (Map<String, Object>) job.getAdditionalProperties().get("status");
        if (status == null) return new Status(State.PENDING, "created, not yet reconciled");
        Map<String, Map<String, Object>> conditions = new LinkedHashMap<>();
        for (Object c : (List<Object>) status.getOrDefault("conditions", List.of())) {
            Map<String, Object> m = (Map<String, Object>) c;
            conditions.put(String.valueOf(m.get("type")), m);
        }
        if (isTrue(conditions.get("Failed"))) return new Status(State.FAILED, describe(conditions.get("Failed")));
        if (isTrue(conditions.get("Complete"))) return new Status(State.SUCCEEDED, describe(conditions.get("Complete")));
        if (isTrue(conditions.get("Suspended"))) return new Status(State.PENDING, "suspended: " + describe(conditions.get("Suspended")));
        int ready = 0, active = 0;
        for (Object j : (List<Object>) status.getOrDefault("jobsStatus", List.of())) {
            Map<String, Object> m = (Map<String, Object>) j;
            ready += number(m.get("ready"));
            active += number(m.get("active"));
        }
        if (ready > 0) return new Status(State.RUNNING, ready + " job(s) ready");
        return new Status(State.PENDING, active > 0 ? "pods starting" : "waiting for pods");
    }

    private static boolean isTrue(Map<String, Object> condition) {
        return condition != null && "True".equals(String.valueOf(condition.get("status")));
    }

    private static String describe(Map<String, Object> condition) {
        Object reason = condition.get("reason"), message = condition.get("message");
        if (reason != null && message != null) return reason + ": " + message;
        return String.valueOf(message != null ? message : reason != null ? reason : condition.get("type"));
    }

    private static int number(Object o) {
        return o instanceof Number n ? n.intValue() : 0;
    }

    private static String reason(KubernetesClientException e) {
        return e.getStatus() != null && e.getStatus().getMessage() != null ? e.getStatus().getMessage() : e.getMessage();
    }

    private void sleep() {
        try {
            Thread.sleep(settings.poll().toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RunCancelledException("kubeflow", 0);
        }
    }

    /** Reads the lines appended to the events file since the last call; a line still being written waits for its newline. */
    static final class EventTail {
        private final Path file;
        private long offset;

        EventTail(Path file) {
            this.file = file;
        }

        void read(TrlExecutor.Events events) throws IOException {
            if (!Files.exists(file)) return;
            try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "r")) {
                if (f.length() <= offset) return;
                f.seek(offset);
                byte[] bytes = new byte[(int) (f.length() - offset)];
                f.readFully(bytes);
                int end = lastNewline(bytes);
                if (end < 0) return;
                offset += end + 1;
                for (String line : new String(bytes, 0, end, StandardCharsets.UTF_8).split("\n")) {
                    if (line.startsWith("{")) events.handle(line);
                }
            }
        }

        private static int lastNewline(byte[] bytes) {
            for (int i = bytes.length - 1; i >= 0; i--) if (bytes[i] == '\n') return i;
            return -1;
        }
    }
}
