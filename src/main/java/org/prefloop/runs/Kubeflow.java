package org.prefloop.runs;

import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import org.eclipse.microprofile.config.inject.ConfigProperty;

import java.time.Duration;
import java.util.Optional;

/**
 * The worker's link to the Kubeflow Trainer for the {@code kubeflow} executor. The Kubernetes
 * client is made on first use only (a worker that never runs such a job never looks for a
 * cluster); it finds the cluster as kubectl does: the pod's service account in the cluster,
 * else ~/.kube/config, unless {@code prefloop.kubeflow.master-url} names the API server.
 */
@ApplicationScoped
public class Kubeflow {
    @ConfigProperty(name = "prefloop.kubeflow.namespace")
    Optional<String> namespace;
    @ConfigProperty(name = "prefloop.kubeflow.runtime", defaultValue = "prefloop-trl")
    String runtime;
    @ConfigProperty(name = "prefloop.kubeflow.queue")
    Optional<String> queue;
    @ConfigProperty(name = "prefloop.kubeflow.image")
    Optional<String> image;
    @ConfigProperty(name = "prefloop.kubeflow.poll-millis", defaultValue = "5000")
    long pollMillis;
    @ConfigProperty(name = "prefloop.kubeflow.api-errors-seconds", defaultValue = "600")
    long apiErrorsSeconds;
    @ConfigProperty(name = "prefloop.kubeflow.master-url")
    Optional<String> masterUrl;

    private KubernetesClient client;

    synchronized KubeflowExecutor executor() {
        if (client == null) {
            Config config = masterUrl.isPresent()
                    ? new ConfigBuilder(Config.empty()).withMasterUrl(masterUrl.get()).withTrustCerts(true).build()
                    : Config.autoConfigure(null);
            client = new KubernetesClientBuilder().withConfig(config).build();
        }
        String ns = namespace.filter(s -> !s.isBlank()).orElseGet(() -> client.getNamespace() != null ? client.getNamespace() : "default");
        return new KubeflowExecutor(client, new KubeflowExecutor.Settings(ns, runtime, queue.orElse(null), image.orElse(null),
                Duration.ofMillis(pollMillis), Duration.ofSeconds(apiErrorsSeconds)));
    }

    synchronized void close(@Observes ShutdownEvent event) {
        if (client != null) client.close();
        client = null;
    }
}
