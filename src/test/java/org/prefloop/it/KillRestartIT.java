package org.prefloop.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.ServiceProcess;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Nothing lost, nothing twice: judgments are posted by concurrent clients, some twice, while
 * the service is killed with SIGKILL once and restarted. Clients retry what was not answered
 * 202, with the same event id, as the API asks. Afterwards every event is stored exactly once.
 */
class KillRestartIT {
    static final int EVENTS = 2_000;
    static final int POSTED_TWICE = 200;
    static final int CLIENTS = 8;
    static final int KILL_AFTER_ACCEPTED = 800;

    private final ObjectMapper json = new ObjectMapper();

    record Post(UUID eventId, long comparisonId, String choice) {
        String body() {
            return "{\"eventId\":\"" + eventId + "\",\"comparisonId\":" + comparisonId + ",\"choice\":\"" + choice + "\"}";
        }
    }

    @Test
    void everyAcceptedJudgmentIsStoredExactlyOnceAcrossASigkill(@TempDir Path data) throws Exception {
        long t0 = System.nanoTime();
        ServiceProcess service = new ServiceProcess(data, Map.of()).start();
        log("started in %.1f s", (System.nanoTime() - t0) / 1e9);
        List<Long> comparisons = new ArrayList<>();
        for (int i = 0; i < EVENTS; i++) { // one comparison per event: one judgment per person per comparison
            var r = service.postJson("/api/comparisons", "{\"prompt\":[{\"role\":\"user\",\"content\":\"q" + i + "\"}],"
                    + "\"responses\":[{\"text\":\"a\"},{\"text\":\"b\"}]}");
            comparisons.add(json.readTree(r.body()).get("id").asLong());
        }
        Random rnd = new Random(42);
        String[] choices = {"A", "B", "tie", "both_bad"};
        List<Post> events = new ArrayList<>();
        for (int i = 0; i < EVENTS; i++) {
            events.add(new Post(UUID.randomUUID(), comparisons.get(i % comparisons.size()), choices[rnd.nextInt(4)]));
        }
        List<Post> posts = new ArrayList<>(events);
        posts.addAll(events.subList(0, POSTED_TWICE));
        Collections.shuffle(posts, rnd);

        Set<UUID> accepted = ConcurrentHashMap.newKeySet();
        AtomicInteger acceptedPosts = new AtomicInteger();
        AtomicInteger failedPosts = new AtomicInteger();
        ExecutorService clients = Executors.newFixedThreadPool(CLIENTS);
        Thread killer = new Thread(() -> {
            try {
                while (acceptedPosts.get() < KILL_AFTER_ACCEPTED) Thread.sleep(5);
                service.kill();
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        });
        killer.start();
        for (Post p : posts) {
            clients.submit(() -> {
                try {
                    if (service.postJson("/api/preferences", p.body()).statusCode() == 202) {
                        accepted.add(p.eventId());
                        acceptedPosts.incrementAndGet();
                    } else {
                        failedPosts.incrementAndGet();
                    }
                } catch (Exception e) {
                    failedPosts.incrementAndGet();
                }
            });
        }
        clients.shutdown();
        assertTrue(clients.awaitTermination(5, TimeUnit.MINUTES));
        killer.join(60_000);
        assertTrue(acceptedPosts.get() >= KILL_AFTER_ACCEPTED, "posts were accepted before the kill");
        assertTrue(failedPosts.get() > 0, "the kill interrupted the clients");

        Set<UUID> acceptedBeforeKill = Set.copyOf(accepted);
        long killedAt = System.nanoTime();
        try (ServiceProcess restarted = service.start()) {
            log("restarted in %.1f s; %d posts accepted, %d failed before", (System.nanoTime() - killedAt) / 1e9, acceptedPosts.get(), failedPosts.get());
            // The clients retry, with the same event id, every event not yet answered 202.
            ExecutorService retries = Executors.newFixedThreadPool(CLIENTS);
            for (Post p : events) {
                if (accepted.contains(p.eventId())) continue;
                retries.submit(() -> {
                    for (int attempt = 0; attempt < 5 && !accepted.contains(p.eventId()); attempt++) {
                        try {
                            if (restarted.postJson("/api/preferences", p.body()).statusCode() == 202) accepted.add(p.eventId());
                        } catch (Exception e) {
                            // retried
                        }
                    }
                });
            }
            retries.shutdown();
            assertTrue(retries.awaitTermination(5, TimeUnit.MINUTES));
            assertEquals(EVENTS, accepted.size(), "every event was eventually answered 202");
            long retried = System.nanoTime();

            Map<UUID, Integer> stored = new HashMap<>();
            for (int round = 0; round < 240; round++) {
                stored = storedCounts(restarted, comparisons);
                if (stored.size() >= EVENTS) break;
                Thread.sleep(250);
            }
            log("all stored %.1f s after the retries", (System.nanoTime() - retried) / 1e9);
            Set<UUID> missing = new java.util.HashSet<>(accepted);
            missing.removeAll(stored.keySet());
            long missingFromBeforeTheKill = missing.stream().filter(acceptedBeforeKill::contains).count();
            assertEquals(accepted, stored.keySet(), "exactly the accepted events are stored; " + missing.size()
                    + " accepted events are missing, " + missingFromBeforeTheKill + " of them answered 202 before the kill");
            Map<UUID, Integer> twice = new HashMap<>();
            stored.forEach((id, n) -> {
                if (n != 1) twice.put(id, n);
            });
            assertEquals(Map.of(), twice, "no event is stored twice");
        }
    }

    private static void log(String format, Object... args) {
        System.out.printf("[KillRestartIT] " + format + "%n", args);
    }

    private Map<UUID, Integer> storedCounts(ServiceProcess service, List<Long> comparisons) throws Exception {
        Map<UUID, Integer> counts = new HashMap<>();
        for (long c : comparisons) {
            JsonNode list = json.readTree(service.get("/api/comparisons/" + c + "/preferences").body());
            for (JsonNode j : list) counts.merge(UUID.fromString(j.get("eventId").asText()), 1, Integer::sum);
        }
        return counts;
    }
}
