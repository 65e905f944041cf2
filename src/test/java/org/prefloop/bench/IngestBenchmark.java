package org.prefloop.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;
import org.prefloop.testing.ServiceProcess;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Ingest benchmark: the packaged service (embedded broker + H2, as `java -jar` starts it) under
 * concurrent clients, against two raw baselines measured in the same run on the same broker and
 * the same database file: a plain Kafka producer (acks=all, idempotent) and a plain batched
 * JDBC insert. Prints events/s, accept latency percentiles, time until stored, and the ratios.
 *
 * <pre>./mvnw -B package -DskipTests -DskipNpm -Pbench -Dbench.main=org.prefloop.bench.IngestBenchmark</pre>
 * Options (system properties): bench.events (20000), bench.clients (16).
 */
public final class IngestBenchmark {
    static final String PASSWORD = ServiceProcess.ADMIN_PASSWORD;

    public static void main(String[] args) throws Exception {
        int events = Integer.getInteger("bench.events", 20_000);
        int clients = Integer.getInteger("bench.clients", 16);
        Path data = Files.createTempDirectory("prefloop-bench");
        int kafkaPort = freePort();
        ServiceProcess service = new ServiceProcess(data, Map.of("PREFLOOP_KAFKA_PORT", String.valueOf(kafkaPort))).start();
        ExecutorService httpThreads = Executors.newFixedThreadPool(clients);
        HttpClient http = HttpClient.newBuilder().executor(httpThreads).build();
        String base = "http://127.0.0.1:" + service.port();
        try {
            // one comparison per judgment: a person judges a comparison once (another event id is a 409)
            List<Long> comparisons = java.util.Collections.synchronizedList(new ArrayList<>());
            ExecutorService makers = Executors.newFixedThreadPool(clients);
            List<Future<Long>> made = new ArrayList<>();
            for (int i = 0; i < 1_000 + events; i++) {
                String body = "{\"prompt\":[{\"role\":\"user\",\"content\":\"question " + i + "\"}],\"responses\":[{\"text\":\"a\"},{\"text\":\"b\"}]}";
                made.add(makers.submit(() -> new ObjectMapper().readTree(post(http, base + "/api/comparisons", body).body()).get("id").asLong()));
            }
            List<Long> ids = new ArrayList<>();
            for (Future<Long> f : made) ids.add(f.get());
            makers.shutdown();
            comparisons.addAll(ids.subList(1_000, ids.size()));
            // warm-up: the JIT and the connection pools, not measured
            drive(http, base, ids.subList(0, 1_000), 1_000, clients);
            long storedBefore = stored(http, base);

            long t0 = System.nanoTime();
            long[] latencies = drive(http, base, comparisons, events, clients);
            double acceptSeconds = (System.nanoTime() - t0) / 1e9;
            while (stored(http, base) < storedBefore + events) Thread.sleep(50);
            double storedSeconds = (System.nanoTime() - t0) / 1e9;

            double producerRate = rawProducer("127.0.0.1:" + kafkaPort, events, clients);
            service.stop();
            double jdbcRate = rawJdbc(data.resolve("db/prefloop").toAbsolutePath(), events);

            Arrays.sort(latencies);
            double acceptRate = events / acceptSeconds;
            double storeRate = events / storedSeconds;
            System.out.printf("%nIngest benchmark: %,d judgments, %d concurrent clients, embedded broker + H2, bcrypt cost 4, %d cores%n",
                    events, clients, Runtime.getRuntime().availableProcessors());
            System.out.printf("  service  accepted (202 after acks=all)   %,10.0f events/s   p50 %.1f ms   p99 %.1f ms%n",
                    acceptRate, latencies[events / 2] / 1e6, latencies[(int) (events * 0.99)] / 1e6);
            System.out.printf("  service  all stored after                %,10.1f s  (%,.0f events/s end to end)%n", storedSeconds, storeRate);
            System.out.printf("  baseline plain Kafka producer (acks=all)  %,10.0f events/s%n", producerRate);
            System.out.printf("  baseline plain batched JDBC insert (H2)   %,10.0f rows/s%n", jdbcRate);
            System.out.printf("  ratio    accepted / raw producer          %10.2f%n", acceptRate / producerRate);
            System.out.printf("  ratio    stored / raw JDBC insert         %10.2f%n", storeRate / jdbcRate);
        } finally {
            service.close();
            http.close();
            // the client's own executor is not the client's to stop: without this the JVM never exits
            httpThreads.shutdownNow();
        }
    }

    static long[] drive(HttpClient http, String base, List<Long> comparisons, int events, int clients) throws Exception {
        long[] latencies = new long[events];
        AtomicInteger next = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        List<Future<?>> running = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            running.add(pool.submit(() -> {
                int i;
                while ((i = next.getAndIncrement()) < events) {
                    String body = "{\"eventId\":\"" + UUID.randomUUID() + "\",\"comparisonId\":" + comparisons.get(i % comparisons.size())
                            + ",\"choice\":\"" + (i % 2 == 0 ? "A" : "B") + "\",\"timeSpentMs\":1200}";
                    long t = System.nanoTime();
                    HttpResponse<String> r = post(http, base + "/api/preferences", body);
                    latencies[i] = System.nanoTime() - t;
                    if (r.statusCode() != 202) throw new IllegalStateException("HTTP " + r.statusCode() + ": " + r.body());
                }
                return null;
            }));
        }
        try {
            for (Future<?> f : running) f.get();
        } finally {
            pool.shutdownNow(); // a failed client must not keep the JVM alive
        }
        return latencies;
    }

    static double rawProducer(String bootstrap, int events, int clients) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("acks", "all");
        p.put("enable.idempotence", "true");
        p.put("linger.ms", "2");
        String payload = "{\"eventId\":\"" + UUID.randomUUID() + "\",\"comparisonId\":1,\"annotator\":\"admin\",\"choice\":\"A\","
                + "\"rationale\":null,\"timeSpentMs\":1200,\"submittedAt\":\"" + Instant.now() + "\",\"judge\":null}";
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < 1000; i++) producer.send(new ProducerRecord<>("bench-raw", String.valueOf(i % 50), payload)).get();
            // the same shape of load as the service sees: `clients` senders, each waiting for its ack
            AtomicInteger next = new AtomicInteger();
            ExecutorService senderThreads = Executors.newFixedThreadPool(clients);
            long t0 = System.nanoTime();
            List<CompletableFuture<Void>> senders = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                senders.add(CompletableFuture.runAsync(() -> {
                    int i;
                    while ((i = next.getAndIncrement()) < events) {
                        try {
                            producer.send(new ProducerRecord<>("bench-raw", String.valueOf(i % 50), payload)).get();
                        } catch (Exception e) {
                            throw new IllegalStateException(e);
                        }
                    }
                }, senderThreads));
            }
            try {
                CompletableFuture.allOf(senders.toArray(CompletableFuture[]::new)).join();
            } finally {
                senderThreads.shutdownNow(); // its threads are not daemons: left running, they kept the benchmark from exiting
            }
            return events / ((System.nanoTime() - t0) / 1e9);
        }
    }

    static double rawJdbc(Path dbFile, int events) throws Exception {
        try (Connection c = DriverManager.getConnection("jdbc:h2:file:" + dbFile + ";MODE=PostgreSQL;DATABASE_TO_LOWER=TRUE", "prefloop", "")) {
            c.setAutoCommit(false);
            c.createStatement().execute("create table bench_raw as select * from preferences where 1 = 0");
            long t0 = System.nanoTime();
            try (PreparedStatement ps = c.prepareStatement("insert into bench_raw (event_id, comparison_id, annotator, choice, rationale, "
                    + "time_spent_ms, submitted_at) values (?,?,?,?,?,?,?)")) {
                for (int i = 0; i < events; i++) {
                    ps.setObject(1, UUID.randomUUID());
                    ps.setLong(2, 1 + i % 50);
                    ps.setString(3, "admin");
                    ps.setString(4, "A");
                    ps.setString(5, null);
                    ps.setLong(6, 1200);
                    ps.setTimestamp(7, Timestamp.from(Instant.now()));
                    ps.addBatch();
                    if ((i + 1) % 500 == 0) {
                        ps.executeBatch();
                        c.commit();
                    }
                }
                ps.executeBatch();
                c.commit();
            }
            return events / ((System.nanoTime() - t0) / 1e9);
        }
    }

    static long stored(HttpClient http, String base) throws Exception {
        HttpResponse<String> r = http.send(auth(HttpRequest.newBuilder(URI.create(base + "/api/export/preferences/summary"))).build(),
                HttpResponse.BodyHandlers.ofString());
        return new ObjectMapper().readTree(r.body()).get("judgments").asLong();
    }

    static HttpResponse<String> post(HttpClient http, String url, String body) {
        try {
            return http.send(auth(HttpRequest.newBuilder(URI.create(url))).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body)).timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static HttpRequest.Builder auth(HttpRequest.Builder b) {
        return b.header("Authorization", "Basic " + Base64.getEncoder().encodeToString(("admin:" + PASSWORD).getBytes(StandardCharsets.UTF_8)));
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
