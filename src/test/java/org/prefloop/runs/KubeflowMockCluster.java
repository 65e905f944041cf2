package org.prefloop.runs;

import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.MockWebServer;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.quarkus.test.junit.QuarkusTestProfile;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** fabric8's Kubernetes API server in CRUD mode, which the worker's kubeflow executor is pointed at (we do not ship Kubernetes). */
public class KubeflowMockCluster implements QuarkusTestResourceLifecycleManager {
    private KubernetesMockServer server;

    @Override
    public Map<String, String> start() {
        server = new KubernetesMockServer(new io.fabric8.mockwebserver.Context(), new MockWebServer(), new HashMap<>(), new KubernetesCrudDispatcher(), false);
        server.init();
        return Map.of("prefloop.kubeflow.master-url", server.url("/"),
                "prefloop.kubeflow.namespace", KubeflowExecutorTest.NS,
                "prefloop.kubeflow.queue", "prefloop-training",
                "prefloop.kubeflow.poll-millis", "200");
    }

    @Override
    public void stop() {
        if (server != null) server.destroy();
    }

    /** The service with a Kubernetes cluster that has the Kubeflow Trainer's API (played by the test). */
    public static class Profile implements QuarkusTestProfile {
        @Override
        public List<TestResourceEntry> testResources() {
            return List.of(new TestResourceEntry(KubeflowMockCluster.class));
        }
    }
}
