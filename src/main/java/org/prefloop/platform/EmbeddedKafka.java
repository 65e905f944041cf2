package org.prefloop.platform;

import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.metadata.storage.Formatter;
import org.apache.kafka.server.common.Feature;
import org.apache.kafka.server.common.MetadataVersion;
import org.jboss.logging.Logger;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

/**
 * A single-node Apache Kafka broker (KRaft: broker and controller in one process) that runs
 * inside the service when no external cluster is configured. It is the real Kafka server
 * code, so everything above it (acks, idempotence, consumer groups, offsets) behaves as in
 * production. Its log directory lives under the data directory and survives restarts.
 */
public final class EmbeddedKafka {
    private static final Logger LOG = Logger.getLogger(EmbeddedKafka.class);

    private final Path logDir;
    private final int port;
    private final KafkaRaftServer server;

    private EmbeddedKafka(Path logDir, int port, KafkaRaftServer server) {
        this.logDir = logDir;
        this.port = port;
        this.server = server;
    }

    /** Starts a broker whose log lives in {@code logDir}, on {@code port} (0 picks a free one). */
    public static EmbeddedKafka start(Path logDir, int port) {
        try {
            Files.createDirectories(logDir);
            int brokerPort = port == 0 ? freePort() : port;
            int controllerPort = freePort();
            Map<String, Object> props = new HashMap<>();
            props.put("node.id", "1");
            props.put("process.roles", "broker,controller");
            props.put("listeners", "PLAINTEXT://127.0.0.1:" + brokerPort + ",CONTROLLER://127.0.0.1:" + controllerPort);
            props.put("advertised.listeners", "PLAINTEXT://127.0.0.1:" + brokerPort);
            props.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
            props.put("controller.listener.names", "CONTROLLER");
            props.put("inter.broker.listener.name", "PLAINTEXT");
            props.put("controller.quorum.voters", "1@127.0.0.1:" + controllerPort);
            props.put("log.dirs", logDir.toString());
            // One node: every internal topic has one replica.
            props.put("offsets.topic.replication.factor", "1");
            props.put("offsets.topic.num.partitions", "5");
            props.put("transaction.state.log.replication.factor", "1");
            props.put("transaction.state.log.min.isr", "1");
            props.put("share.coordinator.state.topic.replication.factor", "1");
            props.put("share.coordinator.state.topic.min.isr", "1");
            props.put("min.insync.replicas", "1");
            props.put("num.partitions", "3");
            props.put("group.initial.rebalance.delay.ms", "0");
            props.put("auto.create.topics.enable", "true");
            // A restart on existing data otherwise waits ~14 s for the old broker session to expire.
            props.put("broker.session.timeout.ms", "3000");
            props.put("broker.heartbeat.interval.ms", "500");
            props.put("log.cleaner.dedupe.buffer.size", String.valueOf(2 * 1024 * 1024));
            KafkaConfig config = new KafkaConfig(props, false);
            format(logDir, config);
            KafkaRaftServer server = new KafkaRaftServer(config, Time.SYSTEM);
            server.startup();
            createTopics("127.0.0.1:" + brokerPort);
            LOG.infof("Embedded Kafka broker on 127.0.0.1:%d, data in %s", brokerPort, logDir);
            return new EmbeddedKafka(logDir, brokerPort, server);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start the embedded Kafka broker in " + logDir, e);
        }
    }

    /** The service's topics, made up front: a consumer subscribed to a topic that appears later finds it only at its next metadata refresh. */
    static final Map<String, Integer> TOPICS = Map.of("preferences", 3, "preferences-dlq", 1, "training-jobs", 3, "training-events", 3, "feedback", 3);

    private static void createTopics(String bootstrap) {
        try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            java.util.Set<String> existing = admin.listTopics().names().get();
            java.util.List<org.apache.kafka.clients.admin.NewTopic> missing = TOPICS.entrySet().stream().filter(t -> !existing.contains(t.getKey()))
                    .map(t -> new org.apache.kafka.clients.admin.NewTopic(t.getKey(), t.getValue(), (short) 1)).toList();
            if (!missing.isEmpty()) admin.createTopics(missing).all().get();
        } catch (Exception e) {
            throw new IllegalStateException("cannot create the service's topics on the embedded broker: " + e.getMessage(), e);
        }
    }

    /** What {@code kafka-storage.sh format} does, keeping the cluster id of an existing log directory. */
    private static void format(Path logDir, KafkaConfig config) {
        String clusterId = existingClusterId(logDir);
        if (clusterId != null) return;
        try {
            new Formatter()
                    .setPrintStream(new PrintStream(PrintStream.nullOutputStream()))
                    .setClusterId(Uuid.randomUuid().toString())
                    .setNodeId(1)
                    .addDirectory(logDir.toString())
                    .setSupportedFeatures(Feature.PRODUCTION_FEATURES)
                    .setReleaseVersion(MetadataVersion.latestProduction())
                    .setControllerListenerName("CONTROLLER")
                    .setMetadataLogDirectory(config.metadataLogDir())
                    .setIgnoreFormatted(true)
                    .run();
        } catch (Exception e) {
            throw new IllegalStateException("cannot format the embedded Kafka log directory " + logDir, e);
        }
    }

    private static String existingClusterId(Path logDir) {
        Path meta = logDir.resolve("meta.properties");
        if (!Files.exists(meta)) return null;
        Properties p = new Properties();
        try (InputStream in = Files.newInputStream(meta)) {
            p.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return p.getProperty("cluster.id");
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        }
    }

    public String bootstrapServers() {
        return "127.0.0.1:" + port;
    }

    public Path logDir() {
        return logDir;
    }

    public void stop() {
        server.shutdown();
        server.awaitShutdown();
        LOG.info("Embedded Kafka broker stopped");
    }
}
