package org.prefloop.deploy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PersistentVolumeClaim;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyIngressRule;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Parses every manifest in k8s/ into typed Kubernetes objects and checks what operators rely on. */
class KubernetesManifestsTest {
    private static final KubernetesSerialization SERIALIZATION = new KubernetesSerialization();
    private static final Set<String> TOPICS = Set.of("preferences", "preferences-dlq", "training-jobs", "training-events", "feedback");

    private static List<HasMetadata> objects(String kustomization) {
        List<ObjectNode> raw = Kustomization.build(Path.of("k8s", kustomization));
        return raw.stream().map(n -> (HasMetadata) SERIALIZATION.unmarshal(n.toString())).toList();
    }

    private static <T> List<T> ofType(List<HasMetadata> objects, Class<T> type) {
        return objects.stream().filter(type::isInstance).map(type::cast).toList();
    }

    private static Deployment deployment(List<HasMetadata> objects, String name) {
        return ofType(objects, Deployment.class).stream().filter(d -> d.getMetadata().getName().equals(name))
                .findFirst().orElseThrow(() -> new AssertionError("no Deployment " + name));
    }

    @ParameterizedTest
    @ValueSource(strings = {"base", "overlays/dev", "overlays/prod"})
    void everyContainerHasHealthProbesAndResources(String kustomization) {
        List<Deployment> deployments = ofType(objects(kustomization), Deployment.class);
        assertEquals(Set.of("prefloop-web", "prefloop-ingest", "prefloop-serve", "prefloop-worker"),
                deployments.stream().map(d -> d.getMetadata().getName()).collect(Collectors.toSet()));
        for (Deployment d : deployments) {
            assertEquals(d.getSpec().getSelector().getMatchLabels(),
                    filter(d.getSpec().getTemplate().getMetadata().getLabels(), d.getSpec().getSelector().getMatchLabels().keySet()),
                    d.getMetadata().getName() + ": selector must match the pod template");
            for (Container c : d.getSpec().getTemplate().getSpec().getContainers()) {
                String where = d.getMetadata().getName() + "/" + c.getName();
                assertEquals("/q/health/ready", c.getReadinessProbe().getHttpGet().getPath(), where);
                assertEquals("/q/health/live", c.getLivenessProbe().getHttpGet().getPath(), where);
                // probes reach the management interface, which no Service exposes
                assertEquals("management", c.getReadinessProbe().getHttpGet().getPort().getStrVal(), where);
                assertEquals("management", c.getLivenessProbe().getHttpGet().getPort().getStrVal(), where);
                assertTrue(c.getPorts().stream().anyMatch(p -> "management".equals(p.getName()) && p.getContainerPort() == 9000), where);
                Map<String, Quantity> requests = c.getResources().getRequests();
                assertNotNull(requests.get("cpu"), where + " requests cpu");
                assertNotNull(requests.get("memory"), where + " requests memory");
                assertNotNull(c.getResources().getLimits().get("memory"), where + " limits memory");
                assertFalse(c.getSecurityContext().getAllowPrivilegeEscalation(), where);
                assertTrue(d.getSpec().getTemplate().getSpec().getSecurityContext().getRunAsNonRoot(), where + " runs as non-root");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"base", "overlays/dev", "overlays/prod"})
    void noServiceExposesTheManagementPort(String kustomization) {
        for (Service service : ofType(objects(kustomization), Service.class)) {
            for (var port : service.getSpec().getPorts()) {
                assertFalse(port.getTargetPort() != null && "management".equals(port.getTargetPort().getStrVal())
                        || port.getPort() == 9000, service.getMetadata().getName() + " exposes health and metrics");
            }
        }
    }

    private static Map<String, String> filter(Map<String, String> labels, Set<String> keys) {
        return labels.entrySet().stream().filter(e -> keys.contains(e.getKey()))
                .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue));
    }

    @ParameterizedTest
    @ValueSource(strings = {"base", "overlays/prod"})
    void theTrainingWorkerRunsOnAGpuNode(String kustomization) {
        Deployment worker = deployment(objects(kustomization), "prefloop-worker");
        Container c = worker.getSpec().getTemplate().getSpec().getContainers().get(0);
        assertEquals(new Quantity("1"), c.getResources().getLimits().get("nvidia.com/gpu"));
        assertEquals("true", worker.getSpec().getTemplate().getSpec().getNodeSelector().get("nvidia.com/gpu.present"));
        assertTrue(worker.getSpec().getTemplate().getSpec().getTolerations().stream()
                .anyMatch(t -> t.getKey().equals("nvidia.com/gpu")));
        assertEquals("Recreate", worker.getSpec().getStrategy().getType(), "two pods must never share one worker's GPU");
    }

    @Test
    void theDevOverlayRunsTheWorkerWithoutAGpu() throws java.io.IOException {
        Deployment worker = deployment(objects("overlays/dev"), "prefloop-worker");
        Container c = worker.getSpec().getTemplate().getSpec().getContainers().get(0);
        assertFalse(c.getResources().getLimits().containsKey("nvidia.com/gpu"));
        Map<String, String> nodeSelector = worker.getSpec().getTemplate().getSpec().getNodeSelector();
        assertTrue(nodeSelector == null || nodeSelector.isEmpty(), "no GPU node selector: " + nodeSelector);
        // it trains on jemalloc without decay, from the package the JVM image installs
        Map<String, String> env = new java.util.HashMap<>();
        c.getEnv().forEach(v -> env.put(v.getName(), v.getValue()));
        assertEquals("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", env.get("LD_PRELOAD"));
        assertEquals("dirty_decay_ms:-1,muzzy_decay_ms:-1", env.get("MALLOC_CONF"));
        assertEquals("worker", env.get("PREFLOOP_ROLES"), "the patch adds to the base's environment");
        assertTrue(java.nio.file.Files.readString(Path.of("docker/Dockerfile.jvm")).contains("libjemalloc2"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"base", "overlays/prod", "overlays/vllm"})
    void noSecretIsWrittenIntoTheManifests(String kustomization) {
        assertEquals(List.of(), ofType(objects(kustomization), Secret.class));
    }

    @ParameterizedTest
    @ValueSource(strings = {"base", "overlays/dev", "overlays/prod", "overlays/vllm"})
    void everyReferencedSecretIsGeneratedOrProvidedByAnOperator(String kustomization) {
        List<HasMetadata> objects = objects(kustomization);
        Set<String> generated = ofType(objects, Secret.class).stream().map(s -> s.getMetadata().getName()).collect(Collectors.toSet());
        Set<String> byOperator = ofType(objects, GenericKubernetesResource.class).stream()
                .filter(r -> r.getKind().equals("Cluster")).map(r -> r.getMetadata().getName() + "-app").collect(Collectors.toSet());
        Set<String> providedByPeople = Set.of("prefloop-admin", "prefloop-api-keys", "prefloop-session", "prefloop-vllm");
        for (Deployment d : ofType(objects, Deployment.class)) {
            d.getSpec().getTemplate().getSpec().getContainers().stream().flatMap(c -> c.getEnv().stream())
                    .filter(e -> e.getValueFrom() != null && e.getValueFrom().getSecretKeyRef() != null)
                    .map(e -> e.getValueFrom().getSecretKeyRef().getName())
                    .forEach(name -> assertTrue(generated.contains(name) || byOperator.contains(name)
                                    || (!kustomization.equals("overlays/dev") && providedByPeople.contains(name)),
                            d.getMetadata().getName() + " references Secret " + name + " that nothing provides"));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"base", "overlays/dev", "overlays/prod", "overlays/vllm"})
    void onlyTheWebRoleIsReachableFromOutside(String kustomization) {
        List<HasMetadata> objects = objects(kustomization);
        List<NetworkPolicy> policies = ofType(objects, NetworkPolicy.class);
        for (Deployment d : ofType(objects, Deployment.class)) {
            Map<String, String> podLabels = d.getSpec().getTemplate().getMetadata().getLabels();
            List<NetworkPolicy> covering = policies.stream().filter(p -> selects(p, podLabels)).toList();
            assertFalse(covering.isEmpty(), d.getMetadata().getName() + " has no NetworkPolicy");
            boolean openToAll = covering.stream().flatMap(p -> p.getSpec().getIngress().stream())
                    .anyMatch(r -> r.getFrom() == null || r.getFrom().isEmpty());
            assertEquals(d.getMetadata().getName().equals("prefloop-web"), openToAll,
                    d.getMetadata().getName() + " open to outside traffic: " + openToAll);
        }
        for (Service s : ofType(objects, Service.class)) {
            assertTrue(s.getSpec().getType() == null || s.getSpec().getType().equals("ClusterIP"),
                    s.getMetadata().getName() + " must not be exposed as " + s.getSpec().getType());
        }
    }

    private static boolean selects(NetworkPolicy p, Map<String, String> labels) {
        var selector = p.getSpec().getPodSelector();
        boolean labelsMatch = selector.getMatchLabels() == null
                || selector.getMatchLabels().entrySet().stream().allMatch(e -> e.getValue().equals(labels.get(e.getKey())));
        boolean expressionsMatch = selector.getMatchExpressions() == null || selector.getMatchExpressions().stream()
                .allMatch(x -> x.getOperator().equals("In") && x.getValues().contains(labels.get(x.getKey())));
        return labelsMatch && expressionsMatch;
    }

    @ParameterizedTest
    @ValueSource(strings = {"base", "overlays/dev", "overlays/prod", "overlays/vllm"})
    void kafkaTopicsStatePartitionsReplicationAndRetention(String kustomization) {
        List<GenericKubernetesResource> topics = ofType(objects(kustomization), GenericKubernetesResource.class).stream()
                .filter(r -> r.getKind().equals("KafkaTopic")).toList();
        assertEquals(TOPICS, topics.stream().map(t -> t.getMetadata().getName()).collect(Collectors.toSet()));
        for (GenericKubernetesResource t : topics) {
            Map<String, Object> spec = t.get("spec");
            assertTrue(((Number) spec.get("partitions")).intValue() >= 1, t.getMetadata().getName());
            assertTrue(((Number) spec.get("replicas")).intValue() >= 1, t.getMetadata().getName());
            @SuppressWarnings("unchecked") Map<String, Object> config = (Map<String, Object>) spec.get("config");
            assertNotNull(config.get("retention.ms"), t.getMetadata().getName() + " states its retention");
            assertTrue(Integer.parseInt(config.get("min.insync.replicas").toString()) <= ((Number) spec.get("replicas")).intValue(),
                    t.getMetadata().getName() + ": min ISR above the replica count makes every acks=all write fail");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"base", "overlays/dev", "overlays/prod", "overlays/vllm"})
    void autoscalersAndVolumesPointAtThingsThatExist(String kustomization) {
        List<HasMetadata> objects = objects(kustomization);
        Set<String> deployments = ofType(objects, Deployment.class).stream().map(d -> d.getMetadata().getName()).collect(Collectors.toSet());
        List<HorizontalPodAutoscaler> hpas = ofType(objects, HorizontalPodAutoscaler.class);
        assertEquals(Set.of("prefloop-web", "prefloop-serve"),
                hpas.stream().map(h -> h.getSpec().getScaleTargetRef().getName()).collect(Collectors.toSet()));
        hpas.forEach(h -> assertTrue(deployments.contains(h.getSpec().getScaleTargetRef().getName())));
        Set<String> claims = ofType(objects, PersistentVolumeClaim.class).stream().map(c -> c.getMetadata().getName()).collect(Collectors.toSet());
        for (Deployment d : ofType(objects, Deployment.class)) {
            d.getSpec().getTemplate().getSpec().getVolumes().stream()
                    .filter(v -> v.getPersistentVolumeClaim() != null)
                    .forEach(v -> assertTrue(claims.contains(v.getPersistentVolumeClaim().getClaimName()),
                            d.getMetadata().getName() + " mounts a missing claim"));
        }
        assertTrue(deployment(objects, "prefloop-worker").getSpec().getTemplate().getSpec().getVolumes().stream()
                .anyMatch(v -> v.getPersistentVolumeClaim() != null), "the worker writes adapters to the model store");
    }

    @Test
    void theVllmOverlayServesThroughVllmWithRunTimeLora() {
        List<HasMetadata> objects = objects("overlays/vllm");
        Deployment vllm = deployment(objects, "prefloop-vllm");
        Container c = vllm.getSpec().getTemplate().getSpec().getContainers().get(0);
        List<String> args = c.getArgs();
        assertTrue(args.contains("--enable-lora"), "vLLM loads LoRA adapters: " + args);
        Map<String, String> env = c.getEnv().stream().filter(e -> e.getValue() != null)
                .collect(Collectors.toMap(e -> e.getName(), e -> e.getValue()));
        assertEquals("True", env.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING"), "the load/unload_lora_adapter endpoints are on");
        assertTrue(c.getEnv().stream().anyMatch(e -> e.getName().equals("VLLM_API_KEY") && e.getValueFrom().getSecretKeyRef() != null),
                "vLLM's API key comes from a Secret");
        assertEquals("/health", c.getReadinessProbe().getHttpGet().getPath());
        assertEquals("/health", c.getLivenessProbe().getHttpGet().getPath());
        assertNotNull(c.getResources().getRequests().get("memory"));
        assertNotNull(c.getResources().getLimits().get("memory"));
        assertEquals(new Quantity("1"), c.getResources().getLimits().get("nvidia.com/gpu"));
        assertFalse(c.getSecurityContext().getAllowPrivilegeEscalation());
        assertTrue(vllm.getSpec().getTemplate().getSpec().getSecurityContext().getRunAsNonRoot());
        assertEquals("Recreate", vllm.getSpec().getStrategy().getType());

        // the model store is mounted where the registry's paths point: the base, and the runs' adapters
        Map<String, String> config = ofType(objects, io.fabric8.kubernetes.api.model.ConfigMap.class).stream()
                .filter(m -> m.getMetadata().getName().equals("prefloop-config")).findFirst().orElseThrow().getData();
        String base = config.get("PREFLOOP_MODEL");
        assertTrue(args.contains("--model=" + base) && args.contains("--served-model-name=" + base),
                "vLLM names its base by the path the registry records: " + args);
        String store = c.getVolumeMounts().stream().filter(m -> m.getName().equals("models")).findFirst().orElseThrow().getMountPath();
        assertTrue(base.startsWith(store + "/") && config.get("PREFLOOP_RUNS_DIR").startsWith(store + "/"), "base and adapters on the mounted store");
        assertTrue(vllm.getSpec().getTemplate().getSpec().getVolumes().stream().anyMatch(v -> v.getName().equals("models")
                && v.getPersistentVolumeClaim() != null && v.getPersistentVolumeClaim().getClaimName().equals("prefloop-models")));

        // the backend setting points at vLLM's Service and port, and web and serve carry its key
        URI backend = URI.create(config.get("PREFLOOP_SERVE_BACKEND_URL"));
        Service service = ofType(objects, Service.class).stream().filter(s -> s.getMetadata().getName().equals(backend.getHost()))
                .findFirst().orElseThrow(() -> new AssertionError("no Service " + backend.getHost()));
        assertEquals(vllm.getSpec().getTemplate().getMetadata().getLabels(), filter(vllm.getSpec().getTemplate().getMetadata().getLabels(),
                service.getSpec().getSelector().keySet()));
        assertTrue(service.getSpec().getSelector().entrySet().stream()
                .allMatch(e -> e.getValue().equals(vllm.getSpec().getTemplate().getMetadata().getLabels().get(e.getKey()))));
        assertEquals(backend.getPort(), service.getSpec().getPorts().get(0).getPort());
        for (String role : List.of("prefloop-web", "prefloop-serve")) {
            assertTrue(deployment(objects, role).getSpec().getTemplate().getSpec().getContainers().get(0).getEnv().stream()
                    .anyMatch(e -> e.getName().equals("PREFLOOP_SERVE_BACKEND_API_KEY")), role + " sends vLLM's key");
        }

        // only PrefLoop's web and serve pods reach vLLM
        NetworkPolicy policy = ofType(objects, NetworkPolicy.class).stream()
                .filter(p -> selects(p, vllm.getSpec().getTemplate().getMetadata().getLabels())).findFirst().orElseThrow();
        var peers = policy.getSpec().getIngress().get(0).getFrom();
        assertTrue(peers.stream().anyMatch(p -> p.getPodSelector() != null && p.getPodSelector().getMatchExpressions().stream()
                .anyMatch(x -> x.getKey().equals("app.kubernetes.io/component") && Set.copyOf(x.getValues()).equals(Set.of("web", "serve")))));
    }

    @Test
    void aBrokenOverlayPatchFailsTheBuild() {
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> Kustomization.build(Path.of("src/test/resources/k8s-broken")));
        assertTrue(e.getMessage().contains("/spec/template/spec/nodeSelector"), e.getMessage());
    }

    /** The Kubeflow overlay passes every check the other overlays pass. */
    @Test
    void theKubeflowOverlayPassesTheCommonChecks() {
        String k = "overlays/kubeflow";
        everyContainerHasHealthProbesAndResources(k);
        noSecretIsWrittenIntoTheManifests(k);
        everyReferencedSecretIsGeneratedOrProvidedByAnOperator(k);
        onlyTheWebRoleIsReachableFromOutside(k);
        kafkaTopicsStatePartitionsReplicationAndRetention(k);
        autoscalersAndVolumesPointAtThingsThatExist(k);
    }

    @Test
    void onlyTheWorkerMayCreateAndDeleteTrainJobsAndOnlyInItsNamespace() {
        List<HasMetadata> objects = objects("overlays/kubeflow");
        assertEquals(List.of(), ofType(objects, io.fabric8.kubernetes.api.model.rbac.ClusterRole.class), "no cluster-wide rights");
        assertEquals(List.of(), ofType(objects, io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding.class), "no cluster-wide rights");
        List<io.fabric8.kubernetes.api.model.rbac.Role> roles = ofType(objects, io.fabric8.kubernetes.api.model.rbac.Role.class);
        List<io.fabric8.kubernetes.api.model.rbac.Role> trainJobRoles = roles.stream()
                .filter(r -> r.getRules().stream().anyMatch(rule -> rule.getResources().contains("trainjobs"))).toList();
        assertEquals(1, trainJobRoles.size());
        io.fabric8.kubernetes.api.model.rbac.Role role = trainJobRoles.get(0);
        for (var rule : role.getRules()) {
            assertEquals(List.of("trainer.kubeflow.org"), rule.getApiGroups());
            assertEquals(List.of("trainjobs"), rule.getResources(), "not the status, not pods, not the runtimes");
            assertFalse(rule.getVerbs().contains("*"));
            assertTrue(Set.of("create", "delete", "get", "list", "watch").containsAll(rule.getVerbs()), rule.getVerbs().toString());
        }
        assertTrue(role.getRules().get(0).getVerbs().containsAll(List.of("create", "delete", "get")));
        var bindings = ofType(objects, io.fabric8.kubernetes.api.model.rbac.RoleBinding.class).stream()
                .filter(b -> b.getRoleRef().getName().equals(role.getMetadata().getName())).toList();
        assertEquals(1, bindings.size());
        assertEquals("Role", bindings.get(0).getRoleRef().getKind());
        assertEquals(List.of("ServiceAccount/prefloop-worker"),
                bindings.get(0).getSubjects().stream().map(s -> s.getKind() + "/" + s.getName()).toList());
        assertEquals("prefloop", role.getMetadata().getNamespace());
        assertEquals("prefloop", bindings.get(0).getMetadata().getNamespace());

        for (Deployment d : ofType(objects, Deployment.class)) {
            var pod = d.getSpec().getTemplate().getSpec();
            boolean worker = d.getMetadata().getName().equals("prefloop-worker");
            assertEquals(worker, "prefloop-worker".equals(pod.getServiceAccountName()), d.getMetadata().getName() + " runs as " + pod.getServiceAccountName());
            assertEquals(worker, Boolean.TRUE.equals(pod.getAutomountServiceAccountToken()), d.getMetadata().getName() + ": only the worker holds an API token");
        }
        var account = ofType(objects, io.fabric8.kubernetes.api.model.ServiceAccount.class).stream()
                .filter(a -> a.getMetadata().getName().equals("prefloop-worker")).findFirst().orElseThrow();
        assertFalse(account.getAutomountServiceAccountToken(), "the token is mounted by the worker's pod spec alone");
    }

    @Test
    void theTrainingRuntimeLaunchesAccelerateOnGpusWithTheRunsFilesOnTheModelStore() {
        List<HasMetadata> objects = objects("overlays/kubeflow");
        GenericKubernetesResource runtime = ofType(objects, GenericKubernetesResource.class).stream()
                .filter(r -> r.getKind().equals("ClusterTrainingRuntime")).findFirst().orElseThrow();
        assertEquals("trainer.kubeflow.org/v1alpha1", runtime.getApiVersion());
        List<Object> replicatedJobs = runtime.get("spec", "template", "spec", "replicatedJobs");
        assertEquals(1, replicatedJobs.size(), "one node group");
        assertEquals("trainer", runtime.get("spec", "template", "spec", "replicatedJobs", 0, "template", "metadata", "labels",
                "trainer.kubeflow.org/trainjob-ancestor-step"), "the Trainer applies the TrainJob's trainer settings to this job");
        io.fabric8.kubernetes.api.model.PodSpec pod = SERIALIZATION.convertValue(
                runtime.get("spec", "template", "spec", "replicatedJobs", 0, "template", "spec", "template", "spec"), io.fabric8.kubernetes.api.model.PodSpec.class);
        Map<String, String> podLabels = runtime.get("spec", "template", "spec", "replicatedJobs", 0, "template", "spec", "template", "metadata", "labels");
        Container node = pod.getContainers().get(0);
        assertEquals("node", node.getName(), "the Trainer puts the TrainJob's settings into the container named node");
        String command = String.join(" ", node.getCommand()) + " " + String.join(" ", node.getArgs());
        for (String part : List.of("accelerate launch", "--config_file \"$PREFLOOP_ACCELERATE_CONFIG\"", "--machine_rank \"$PET_NODE_RANK\"",
                "--main_process_ip \"$PET_MASTER_ADDR\"", "\"$PREFLOOP_SCRIPT\" \"$PREFLOOP_SPEC\"")) {
            assertTrue(command.contains(part), command + " lacks " + part);
        }
        assertEquals(new Quantity("1"), node.getResources().getLimits().get("nvidia.com/gpu"));
        assertTrue(pod.getSecurityContext().getRunAsNonRoot());
        assertFalse(node.getSecurityContext().getAllowPrivilegeEscalation());
        assertEquals("true", pod.getNodeSelector().get("nvidia.com/gpu.present"));

        // the run's files have one path for worker and TrainJob: the same claim at the same mount
        Deployment worker = deployment(objects, "prefloop-worker");
        String claim = pod.getVolumes().stream().filter(v -> v.getPersistentVolumeClaim() != null).findFirst().orElseThrow()
                .getPersistentVolumeClaim().getClaimName();
        String mount = node.getVolumeMounts().stream().filter(m -> pod.getVolumes().stream()
                .anyMatch(v -> v.getName().equals(m.getName()) && v.getPersistentVolumeClaim() != null)).findFirst().orElseThrow().getMountPath();
        var workerPod = worker.getSpec().getTemplate().getSpec();
        String workerVolume = workerPod.getVolumes().stream().filter(v -> v.getPersistentVolumeClaim() != null
                && v.getPersistentVolumeClaim().getClaimName().equals(claim)).findFirst().orElseThrow().getName();
        assertEquals(mount, workerPod.getContainers().get(0).getVolumeMounts().stream()
                .filter(m -> m.getName().equals(workerVolume)).findFirst().orElseThrow().getMountPath());
        var config = ofType(objects, io.fabric8.kubernetes.api.model.ConfigMap.class).stream()
                .filter(c -> c.getMetadata().getName().equals("prefloop-config")).findFirst().orElseThrow();
        assertTrue(config.getData().get("PREFLOOP_RUNS_DIR").startsWith(mount + "/"), "runs live on the model store");

        // the worker names this runtime and the LocalQueue that exists; the pods are reachable by their peers only
        Map<String, String> env = workerPod.getContainers().get(0).getEnv().stream().filter(e -> e.getValue() != null)
                .collect(Collectors.toMap(e -> e.getName(), e -> e.getValue()));
        assertEquals("kubeflow", env.get("PREFLOOP_EXECUTOR"));
        assertEquals(runtime.getMetadata().getName(), env.get("PREFLOOP_KUBEFLOW_RUNTIME"));
        assertTrue(ofType(objects, GenericKubernetesResource.class).stream()
                .anyMatch(r -> r.getKind().equals("LocalQueue") && r.getMetadata().getName().equals(env.get("PREFLOOP_KUBEFLOW_QUEUE"))));
        assertEquals("metadata.namespace", workerPod.getContainers().get(0).getEnv().stream()
                .filter(e -> e.getName().equals("PREFLOOP_KUBEFLOW_NAMESPACE")).findFirst().orElseThrow().getValueFrom().getFieldRef().getFieldPath());
        List<NetworkPolicy> peers = ofType(objects, NetworkPolicy.class).stream().filter(p -> selects(p, podLabels)).toList();
        assertEquals(1, peers.size(), "one policy covers the TrainJob's pods");
        for (NetworkPolicyIngressRule rule : peers.get(0).getSpec().getIngress()) {
            assertTrue(rule.getFrom().stream().allMatch(f -> f.getPodSelector() != null && f.getNamespaceSelector() == null
                    && "trainjob".equals(f.getPodSelector().getMatchLabels().get("app.kubernetes.io/component"))), "only peers may connect");
        }
        assertFalse(worker.getSpec().getTemplate().getSpec().getContainers().get(0).getResources().getLimits().containsKey("nvidia.com/gpu"),
                "the worker only submits; the TrainJob holds the GPUs");
    }
}
