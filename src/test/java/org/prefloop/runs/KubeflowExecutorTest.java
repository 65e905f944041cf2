package org.prefloop.runs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.model.TinyModelRecipe;
import org.prefloop.train.RunCancelledException;
import org.prefloop.train.RunListener;
import org.prefloop.train.RunSpec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The TrainJob life cycle against fabric8's Kubernetes API server in CRUD mode (we do not ship
 * Kubernetes). The test plays the Kubeflow Trainer: it sets the TrainJob's status as the
 * controller and Kueue would, and where a pod would run it runs the command of
 * k8s/overlays/kubeflow/training-runtime.yaml with the environment the TrainJob gives it, so the
 * real TRL program trains the run and its progress reaches the worker through the model store.
 */
@EnableKubernetesMockClient(crud = true)
class KubeflowExecutorTest {
    static final Path TASK = TrlExecutorTest.TASK;
    static final Path MODEL = TrlExecutorTest.MODEL;
    static final String NS = "prefloop";
    static KubernetesClient client;

    @BeforeAll
    static void model() {
        if (!Files.exists(MODEL.resolve("config.json"))) TinyModelRecipe.read(TASK.resolve("tiny-model.json")).write(MODEL);
    }

    @AfterEach
    void noTrainJobLeft() {
        client.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).delete();
    }

    private static KubeflowExecutor executor() {
        return new KubeflowExecutor(client, new KubeflowExecutor.Settings(NS, "prefloop-trl", "prefloop-training", null,
                Duration.ofMillis(100), Duration.ofSeconds(5)));
    }

    private static RunSpec spec(String dpoDataset) {
        return RunSpec.parse("""
                name: kf
                executor: kubeflow
                model_name_or_path: %s
                output_dir: out
                seed: 5
                accelerate: {config: ddp, num_processes: 1, main_process_port: %d}
                sft: {dataset: "%s/sft.jsonl", max_steps: 2, per_device_train_batch_size: 2, learning_rate: 1.0e-3, max_length: 64, r: 4, lora_alpha: 8}
                dpo: {dataset: "%s", max_steps: 2, per_device_train_batch_size: 2, learning_rate: 1.0e-3, max_length: 64, r: 4, lora_alpha: 8}
                """.formatted(MODEL, 29_500, TASK, dpoDataset));
    }

    /** What the worker's listener saw. */
    static final class Seen implements RunListener {
        final List<String> messages = Collections.synchronizedList(new ArrayList<>());
        final List<String> steps = Collections.synchronizedList(new ArrayList<>());
        final List<Double> dpoLosses = Collections.synchronizedList(new ArrayList<>());

        @Override
        public void step(String stage, int step, int totalSteps, Map<String, Double> metrics) {
            steps.add(stage + "/" + step);
            if (stage.equals("dpo")) dpoLosses.add(metrics.get("loss"));
        }

        @Override
        public void message(String text) {
            messages.add(text);
        }

        boolean said(String part) {
            synchronized (messages) {
                return messages.stream().anyMatch(m -> m.contains(part));
            }
        }
    }

    private static CompletableFuture<Map<String, Object>> start(RunSpec spec, Path dir, RunListener l, BooleanSupplier stop, BooleanSupplier cancel) {
        return CompletableFuture.supplyAsync(() -> executor().run(spec, dir, l, stop, cancel));
    }

    private static GenericKubernetesResource awaitJob() throws InterruptedException {
        for (int i = 0; i < 600; i++) {
            List<GenericKubernetesResource> jobs = client.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).list().getItems();
            if (!jobs.isEmpty()) return jobs.get(0);
            Thread.sleep(50);
        }
        throw new AssertionError("no TrainJob was created");
    }

    private static void setStatus(String name, Map<String, Object> status) {
        setStatus(client, name, status);
    }

    /** What the Trainer's controller does: writes the TrainJob's status. */
    static void setStatus(KubernetesClient client, String name, Map<String, Object> status) {
        GenericKubernetesResource job = client.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).withName(name).get();
        job.setAdditionalProperty("status", status);
        client.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).resource(job).update();
    }

    static final Map<String, Object> RUNNING = Map.of("jobsStatus", List.of(Map.of("name", "node", "ready", 1, "active", 1, "succeeded", 0, "failed", 0, "suspended", 0)));

    static Map<String, Object> condition(String type, String reason, String message) {
        return Map.of("type", type, "status", "True", "reason", reason, "message", message, "lastTransitionTime", "2026-12-01T00:00:00Z");
    }

    private static void await(BooleanSupplier what, String description) throws InterruptedException {
        for (int i = 0; i < 1200 && !what.getAsBoolean(); i++) Thread.sleep(50);
        assertTrue(what.getAsBoolean(), description);
    }

    /** Runs the node command of the ClusterTrainingRuntime in k8s/ as one node's pod would, with the TrainJob's environment. */
    @SuppressWarnings("unchecked")
    static Process runNode(GenericKubernetesResource job, int masterPort) throws IOException {
        JsonNode container = new ObjectMapper(new YAMLFactory()).readTree(Path.of("k8s/overlays/kubeflow/training-runtime.yaml").toFile())
                .at("/spec/template/spec/replicatedJobs/0/template/spec/template/spec/containers/0");
        List<String> command = new ArrayList<>();
        container.get("command").forEach(c -> command.add(c.asText()));
        container.get("args").forEach(c -> command.add(c.asText()));
        Map<String, Object> trainer = (Map<String, Object>) ((Map<String, Object>) job.getAdditionalProperties().get("spec")).get("trainer");
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD);
        Map<String, String> env = pb.environment();
        for (Object e : (List<Object>) trainer.get("env")) env.put((String) ((Map<String, Object>) e).get("name"), (String) ((Map<String, Object>) e).get("value"));
        env.put("PET_NNODES", String.valueOf(trainer.get("numNodes")));
        env.put("PET_NPROC_PER_NODE", String.valueOf(trainer.get("numProcPerNode")));
        env.put("PET_NODE_RANK", "0");
        env.put("PET_MASTER_ADDR", "127.0.0.1");
        env.put("PET_MASTER_PORT", String.valueOf(masterPort));
        env.put("OMP_NUM_THREADS", "1");
        return pb.start();
    }

    @Test
    @SuppressWarnings("unchecked")
    void aTrainJobIsSubmittedFollowedFromPendingToSucceededAndItsProgressReported(@TempDir Path dir) throws Exception {
        TrlExecutorTest.assumeTrl();
        Seen seen = new Seen();
        Path runDir = dir.resolve("7-1764547200");
        var result = start(spec(TASK + "/dpo.jsonl"), runDir, seen, () -> false, () -> false);

        GenericKubernetesResource job = awaitJob();
        String name = job.getMetadata().getName();
        assertEquals("prefloop-run-7-1764547200", name);
        assertEquals("prefloop-training", job.getMetadata().getLabels().get("kueue.x-k8s.io/queue-name"));
        Map<String, Object> spec = (Map<String, Object>) job.getAdditionalProperties().get("spec");
        assertEquals(Map.of("name", "prefloop-trl", "apiGroup", "trainer.kubeflow.org", "kind", "ClusterTrainingRuntime"), spec.get("runtimeRef"));
        Map<String, Object> trainer = (Map<String, Object>) spec.get("trainer");
        assertEquals(1, ((Number) trainer.get("numNodes")).intValue());
        assertEquals(Map.of("nvidia.com/gpu", "1"), ((Map<String, Object>) trainer.get("resourcesPerNode")).get("limits"));
        Map<String, String> env = new LinkedHashMap<>();
        for (Object e : (List<Object>) trainer.get("env")) env.put((String) ((Map<String, Object>) e).get("name"), (String) ((Map<String, Object>) e).get("value"));
        for (String file : List.of("PREFLOOP_SPEC", "PREFLOOP_SCRIPT", "PREFLOOP_ACCELERATE_CONFIG")) {
            assertTrue(Path.of(env.get(file)).isAbsolute() && Files.exists(Path.of(env.get(file))), file + " is on the shared store: " + env.get(file));
        }

        await(() -> seen.said("TrainJob " + name + ": pending"), "a TrainJob without status is pending");
        setStatus(name, Map.of("conditions", List.of(condition("Suspended", "Suspended", "Kueue: waiting for quota in ClusterQueue gpu"))));
        await(() -> seen.said("pending (suspended: Suspended: Kueue: waiting for quota"), "Kueue's hold is reported: " + seen.messages);
        setStatus(name, Map.of("conditions", List.of(Map.of("type", "Suspended", "status", "False", "reason", "Resumed", "message", "admitted",
                "lastTransitionTime", "2026-12-01T00:00:01Z")), "jobsStatus", List.of(Map.of("name", "node", "ready", 1, "active", 1, "succeeded", 0, "failed", 0, "suspended", 0))));
        await(() -> seen.said(": running"), "a ready node is running: " + seen.messages);

        Process node = runNode(job, 29_700 + (int) (ProcessHandle.current().pid() % 200));
        assertTrue(node.waitFor(8, TimeUnit.MINUTES), "the node's training ended");
        assertEquals(0, node.exitValue(), "the runtime's command trained the run: " + Files.readString(runDir.resolve("trl-spec.json")));
        await(() -> seen.steps.size() == 4, "the progress reached the worker while the TrainJob ran: " + seen.steps);
        assertTrue(!result.isDone(), "a TrainJob that has not completed is not a finished run");

        setStatus(name, Map.of("conditions", List.of(condition("Complete", "JobsCompleted", "jobs completed"))));
        Map<String, Object> summary = result.get(1, TimeUnit.MINUTES);
        assertEquals(List.of("sft/1", "sft/2", "dpo/1", "dpo/2"), seen.steps);
        assertEquals(Math.log(2), seen.dpoLosses.get(0), 1e-5, "DPO starts at ln 2");
        assertEquals(1, ((Number) summary.get("processes")).intValue());
        assertTrue(Files.exists(runDir.resolve("out/model/model.safetensors")));
        assertTrue(seen.said("succeeded (JobsCompleted: jobs completed)"), seen.messages.toString());
    }

    @Test
    void aFailedTrainJobFailsTheRunWithTheProgramsReasonOrTheControllers(@TempDir Path dir) throws Exception {
        TrlExecutorTest.assumeTrl();
        Path bad = dir.resolve("bad-dpo.jsonl");
        List<String> lines = Files.readAllLines(TASK.resolve("dpo.jsonl")).subList(0, 3);
        Files.write(bad, List.of(lines.get(0), lines.get(1).replace("\"rejected\"", "\"rejectd\""), lines.get(2)));
        var result = start(spec(bad.toString()), dir.resolve("8-1764547200"), new Seen(), () -> false, () -> false);
        GenericKubernetesResource job = awaitJob();
        Process node = runNode(job, 29_500);
        assertTrue(node.waitFor(3, TimeUnit.MINUTES));
        assertEquals(1, node.exitValue(), "bad data fails the pod");
        setStatus(job.getMetadata().getName(), Map.of("conditions", List.of(condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"))));
        ExecutionException e = assertThrows(ExecutionException.class, () -> result.get(1, TimeUnit.MINUTES));
        assertEquals("dpo.dataset line 2: no 'rejected'", e.getCause().getMessage(), "the program's own reason, read from the model store");
        client.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).delete();

        // a node that never got to say anything (an image that does not start): the controller's reason
        var second = start(spec(TASK + "/dpo.jsonl"), dir.resolve("9-1764547200"), new Seen(), () -> false, () -> false);
        GenericKubernetesResource other = awaitJob();
        setStatus(other.getMetadata().getName(), Map.of("conditions", List.of(condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"))));
        ExecutionException e2 = assertThrows(ExecutionException.class, () -> second.get(1, TimeUnit.MINUTES));
        assertEquals("TrainJob prefloop-run-9-1764547200 failed: BackoffLimitExceeded: Job has reached the specified backoff limit", e2.getCause().getMessage());
        client.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).delete();
    }

    @Test
    void aLostLeaseLeavesTheTrainJobForTheNextAttemptWhichFollowsItAndACancelDeletesIt(@TempDir Path dir) throws Exception {
        Path runDir = dir.resolve("10-1764547200");
        AtomicBoolean stop = new AtomicBoolean();
        var first = start(spec(TASK + "/dpo.jsonl"), runDir, new Seen(), stop::get, () -> false);
        GenericKubernetesResource job = awaitJob();
        String uid = job.getMetadata().getUid();
        stop.set(true); // this worker shuts down or loses its lease; nobody cancelled
        ExecutionException released = assertThrows(ExecutionException.class, () -> first.get(1, TimeUnit.MINUTES));
        assertInstanceOf(RunCancelledException.class, released.getCause());
        assertNotNull(client.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).withName(job.getMetadata().getName()).get(),
                "the TrainJob keeps running for whoever takes the lease next");

        Seen seen = new Seen();
        AtomicBoolean cancel = new AtomicBoolean();
        var second = start(spec(TASK + "/dpo.jsonl"), runDir, seen, cancel::get, cancel::get);
        await(() -> seen.said("following TrainJob prefloop-run-10-1764547200, submitted by an earlier attempt"), "the retry adopts the TrainJob: " + seen.messages);
        List<GenericKubernetesResource> jobs = client.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).list().getItems();
        assertEquals(1, jobs.size(), "never submitted twice");
        assertEquals(uid, jobs.get(0).getMetadata().getUid());

        cancel.set(true);
        ExecutionException cancelled = assertThrows(ExecutionException.class, () -> second.get(1, TimeUnit.MINUTES));
        assertInstanceOf(RunCancelledException.class, cancelled.getCause());
        assertNull(client.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).withName(job.getMetadata().getName()).get(),
                "a cancel deletes the TrainJob");
        assertTrue(seen.said("deleted TrainJob prefloop-run-10-1764547200"));
    }

    @Test
    void aTrainJobDeletedBehindTheWorkersBackFailsTheRun(@TempDir Path dir) throws Exception {
        var run = start(spec(TASK + "/dpo.jsonl"), dir.resolve("11-1764547200"), new Seen(), () -> false, () -> false);
        GenericKubernetesResource job = awaitJob();
        client.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).withName(job.getMetadata().getName()).delete();
        ExecutionException e = assertThrows(ExecutionException.class, () -> run.get(1, TimeUnit.MINUTES));
        assertEquals("TrainJob prefloop-run-11-1764547200 was deleted outside PrefLoop", e.getCause().getMessage());
    }
}
