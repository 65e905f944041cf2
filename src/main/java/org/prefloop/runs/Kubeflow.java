package org.prefloop.runs;

import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import org.prefloop.platform.Settings;

import java.time.Duration;

/**
 * The worker's link to the Kubeflow Trainer for the {@code kubeflow} executor. The Kubernetes
 * client is made on first use only (a worker that never runs such a job never looks for a
 * cluster); it finds the cluster as kubectl does: the pod's service account in the cluster,
 * else ~/.kube/config, unless {@code prefloop.kubeflow.master-url} names the API server.
 */
@ApplicationScoped
public class Kubeflow {
    @Inject
    Settings settings;

    private KubernetesClient client;

    synchronized KubeflowExecutor executor() {
        Settings.Kubeflow k = settings.kubeflow();
        if (client == null) {
            Config config = k.masterUrl().isPresent()
                    ? new ConfigBuilder(Config.empty()).withMasterUrl(k.masterUrl().get()).withTrustCerts(true).build()
                    : Config.autoConfigure(null);
            client = new KubernetesClientBuilder().withConfig(config).build();
        }
        String ns = k.namespace().filter(s -> !s.isBlank()).orElseGet(() -> client.getNamespace() != null ? client.getNamespace() : "default");
        return new KubeflowExecutor(client, new KubeflowExecutor.Settings(ns, k.runtime(), k.queue().orElse(null), k.image().orElse(null),
                Duration.ofMillis(k.pollMillis()), Duration.ofSeconds(k.apiErrorsSeconds())));
    }

    synchronized void close(@Observes ShutdownEvent event) {
        if (client != null) client.close();
        client = null;
    }
}
