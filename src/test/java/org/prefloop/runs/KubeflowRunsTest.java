package org.prefloop.runs;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.path.json.JsonPath;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.prefloop.runs.KubeflowExecutorTest.NS;
import static org.prefloop.runs.TrlExecutorTest.MODEL;
import static org.prefloop.runs.TrlExecutorTest.TASK;
import static org.prefloop.testing.Api.asAdmin;

/**
 * A run with {@code executor: kubeflow} through the real broker and worker: the worker submits a
 * TrainJob to fabric8's Kubernetes API server, the test plays the Trainer (status) and the node
 * (the runtime's command from k8s/), and the run ends as every run does: succeeded, its progress
 * on training-events, registered with its lineage; a cancelled run's TrainJob is deleted.
 */
@QuarkusTest
@TestProfile(KubeflowMockCluster.Profile.class)
class KubeflowRunsTest {
    @ConfigProperty(name = "prefloop.kubeflow.master-url")
    String masterUrl;
    KubernetesClient cluster;

    /** A slice of the synthetic task: submission runs the pre-flight checks over every example, within the HTTP test timeout. */
    static final Path DATA = Path.of("target/kubeflow-runs-data").toAbsolutePath();

    @BeforeAll
    static void model() throws IOException {
        TrlExecutorTest.model();
        Files.createDirectories(DATA);
        for (String f : List.of("sft.jsonl", "dpo.jsonl")) Files.write(DATA.resolve(f), Files.readAllLines(TASK.resolve(f)).subList(0, 40));
    }

    @BeforeEach
    void connect() {
        cluster = new KubernetesClientBuilder().withConfig(new ConfigBuilder(Config.empty()).withMasterUrl(masterUrl).build()).build();
    }

    @AfterEach
    void close() {
        // one by one: a delete of the whole collection makes the client read back a list of typed
        // resources, which in the full suite fails on fabric8's service loader under Quarkus's test
        // class loader (LimitRange "not a subtype"); each TrainJob's name is unique to its run anyway
        for (GenericKubernetesResource job : cluster.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).list().getItems()) {
            try {
                cluster.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).withName(job.getMetadata().getName()).delete();
            } catch (io.fabric8.kubernetes.client.KubernetesClientException e) {
                // left behind in the mock server only; no later test reads another run's TrainJob
            }
        }
        cluster.close();
    }

    private static long submit(String name, int dpoSteps) {
        String spec = """
                name: %s
                executor: kubeflow
                model_name_or_path: %s
                seed: 5
                accelerate: {config: ddp, num_processes: 1}
                sft: {dataset: "%s/sft.jsonl", max_steps: 2, per_device_train_batch_size: 2, learning_rate: 1.0e-3, max_length: 64, r: 4, lora_alpha: 8}
                dpo: {dataset: "%s/dpo.jsonl", max_steps: %d, per_device_train_batch_size: 2, learning_rate: 1.0e-3, max_length: 64, r: 4, lora_alpha: 8}
                """.formatted(name, MODEL, DATA, DATA, dpoSteps);
        return asAdmin().contentType("application/yaml").body(spec.getBytes(StandardCharsets.UTF_8))
                .post("/api/runs").then().statusCode(201).extract().jsonPath().getLong("id");
    }

    private GenericKubernetesResource trainJobOf(long runId) {
        await().atMost(Duration.ofSeconds(180)).pollInterval(Duration.ofMillis(300)).until(() ->
                cluster.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).list().getItems().stream()
                        .anyMatch(j -> j.getMetadata().getName().startsWith("prefloop-run-" + runId + "-")));
        return cluster.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).list().getItems().stream()
                .filter(j -> j.getMetadata().getName().startsWith("prefloop-run-" + runId + "-")).findFirst().orElseThrow();
    }

    private static String status(long id) {
        return asAdmin().get("/api/runs/" + id).jsonPath().getString("status");
    }

    @Test
    void aKubeflowRunIsTrainedByItsTrainJobAndRegisteredWithLineage() throws Exception {
        long id = submit("kf-run", 2);
        GenericKubernetesResource job = trainJobOf(id);
        assertEquals("prefloop-training", job.getMetadata().getLabels().get("kueue.x-k8s.io/queue-name"));
        KubeflowExecutorTest.setStatus(cluster, job.getMetadata().getName(), KubeflowExecutorTest.RUNNING);
        Process node = KubeflowExecutorTest.runNode(job, 29_800);
        assertTrue(node.waitFor(8, TimeUnit.MINUTES), "the node's training ended");
        assertEquals(0, node.exitValue());
        assertEquals("running", status(id), "the run lasts as long as its TrainJob");
        KubeflowExecutorTest.setStatus(cluster, job.getMetadata().getName(),
                Map.of("conditions", List.of(KubeflowExecutorTest.condition("Complete", "JobsCompleted", "jobs completed"))));

        await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(500)).until(() -> List.of("succeeded", "failed").contains(status(id)));
        JsonPath run = asAdmin().get("/api/runs/" + id).jsonPath();
        assertEquals("succeeded", run.getString("status"), () -> "error: " + run.getString("error"));
        assertEquals("kubeflow", run.getString("summary.executor"));
        long versionId = run.getLong("modelVersionId");
        JsonPath version = asAdmin().get("/api/models/" + versionId).then().statusCode(200).extract().jsonPath();
        assertEquals(id, version.getLong("runId"));
        assertEquals("kf-run-r" + id, version.getString("name"));
        assertNotNull(version.get("metrics.dpo.final"));
        // the TrainJob's progress reached training-events through the model store and was stored
        await().atMost(Duration.ofSeconds(30)).until(() -> metric(id, "dpo", 2, "loss") != null);
        assertEquals(Math.log(2), metric(id, "dpo", 1, "loss"), 1e-3, "DPO starts at ln 2");
    }

    @Test
    void cancellingAKubeflowRunDeletesItsTrainJob() {
        long id = submit("kf-cancel", 1000);
        GenericKubernetesResource job = trainJobOf(id);
        KubeflowExecutorTest.setStatus(cluster, job.getMetadata().getName(), KubeflowExecutorTest.RUNNING);
        asAdmin().post("/api/runs/" + id + "/cancel").then().statusCode(200);
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(300)).until(() -> status(id).equals("cancelled"));
        assertEquals(null, cluster.genericKubernetesResources(KubeflowExecutor.TRAIN_JOBS).inNamespace(NS).withName(job.getMetadata().getName()).get(),
                "the TrainJob, and with it its pods, is gone");
    }

    private static Double metric(long runId, String stage, int step, String name) {
        List<Map<String, Object>> metrics = asAdmin().get("/api/runs/" + runId).jsonPath().getList("metrics");
        return metrics.stream().filter(m -> stage.equals(m.get("stage")) && ((Number) m.get("step")).intValue() == step && name.equals(m.get("name")))
                .map(m -> ((Number) m.get("value")).doubleValue()).findFirst().orElse(null);
    }
}
