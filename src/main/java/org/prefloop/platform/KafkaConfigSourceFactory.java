package org.prefloop.platform;

import io.quarkus.runtime.ExecutionMode;
import io.smallrye.config.ConfigSourceContext;
import io.smallrye.config.ConfigSourceFactory;
import io.smallrye.config.ConfigValue;
import io.smallrye.config.PropertiesConfigSource;
import org.eclipse.microprofile.config.spi.ConfigSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Supplies the settings that depend on where the service runs: with no
 * {@code KAFKA_BOOTSTRAP_SERVERS} it starts the in-process broker (once, at runtime start,
 * never during the build) and points every Kafka client at it; and it switches the Kafka
 * consumers of each role on or off from {@code prefloop.roles}.
 */
public final class KafkaConfigSourceFactory implements ConfigSourceFactory {
    private static EmbeddedKafka broker;

    @Override
    public synchronized Iterable<ConfigSource> getConfigSources(ConfigSourceContext context) {
        Map<String, String> props = new HashMap<>();
        Set<String> roles = Arrays.stream(value(context, "prefloop.roles", "web,ingest,worker,serve").split(","))
                .map(String::trim).filter(s -> !s.isEmpty()).collect(Collectors.toSet());
        props.put("mp.messaging.incoming.preferences-in.enabled", String.valueOf(roles.contains("ingest")));
        props.put("mp.messaging.incoming.training-events-in.enabled", String.valueOf(roles.contains("ingest")));
        props.put("mp.messaging.incoming.feedback-in.enabled", String.valueOf(roles.contains("ingest")));

        if (ExecutionMode.current() == ExecutionMode.RUNTIME_INIT) {
            // before the broker and the store create anything in it: the data directory is private
            DataDirPermissions.ensurePrivate(Path.of(value(context, "prefloop.data-dir", "./data")));
        }
        String external = firstNonBlank(System.getenv("KAFKA_BOOTSTRAP_SERVERS"), value(context, "kafka.bootstrap.servers", null));
        if (external == null && ExecutionMode.current() == ExecutionMode.RUNTIME_INIT
                && Boolean.parseBoolean(value(context, "prefloop.kafka.embedded", "true"))) {
            if (broker == null) {
                Path logDir = Boolean.parseBoolean(value(context, "prefloop.kafka.ephemeral", "false"))
                        ? temporaryDirectory()
                        : Path.of(value(context, "prefloop.data-dir", "./data")).resolve("kafka");
                int port = Integer.parseInt(value(context, "prefloop.kafka.port", "0"));
                broker = EmbeddedKafka.start(logDir, port);
                Runtime.getRuntime().addShutdownHook(new Thread(EmbeddedKafkaShutdown::stopLast, "embedded-kafka-shutdown"));
            }
            props.put("kafka.bootstrap.servers", broker.bootstrapServers());
        }
        return List.of(new PropertiesConfigSource(props, "prefloop-runtime", 275));
    }

    private static Path temporaryDirectory() {
        try {
            return Files.createTempDirectory("prefloop-kafka");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static synchronized EmbeddedKafka broker() {
        return broker;
    }

    static synchronized void forget() {
        broker = null;
    }

    private static String value(ConfigSourceContext context, String name, String fallback) {
        ConfigValue v = context.getValue(name);
        return v == null || v.getValue() == null || v.getValue().isBlank() ? fallback : v.getValue();
    }

    private static String firstNonBlank(String a, String b) {
        if (a != null && !a.isBlank()) return a;
        return b == null || b.isBlank() ? null : b;
    }
}
