package org.prefloop.serve;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;
import org.prefloop.platform.Settings;

import java.util.List;

import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * The active API keys, as hashes, held in memory so that checking a request never waits on
 * the database. Refreshed every {@value #REFRESH_SECONDS} seconds (so a key revoked on another
 * replica stops working within that time) and at once when this replica creates or revokes one.
 */
@ApplicationScoped
public class ApiKeys {
    static final int REFRESH_SECONDS = 5;
    private static final Logger LOG = Logger.getLogger(ApiKeys.class);

    private volatile Set<String> activeHashes = Set.of();
    private ScheduledExecutorService refresher;

    @Inject
    Settings settings;

    void start(@Observes StartupEvent event) {
        seed();
        refresh();
        refresher = Executors.newSingleThreadScheduledExecutor(r -> new Thread(r, "api-key-refresh"));
        refresher.scheduleWithFixedDelay(this::refreshQuietly, REFRESH_SECONDS, REFRESH_SECONDS, TimeUnit.SECONDS);
    }

    void stop(@Observes ShutdownEvent event) {
        if (refresher != null) refresher.shutdownNow();
    }

    /** Keys seeded from the environment must be at least this long: a short one could be guessed. */
    static final int MIN_SEEDED_LENGTH = 20;

    /**
     * PREFLOOP_API_KEYS (comma-separated) adds keys at start, for scripts and deployments. A key
     * shorter than {@value #MIN_SEEDED_LENGTH} characters stops the start (named by position, never quoted).
     */
    private void seed() {
        List<String> keys = settings.apiKeys().orElse(List.of());
        checkSeeded(keys);
        QuarkusTransaction.requiringNew().run(() -> {
            for (int i = 0; i < keys.size(); i++) {
                String secret = keys.get(i).trim();
                if (!secret.isEmpty() && ApiKey.count("keyHash", ApiKey.hash(secret)) == 0) {
                    ApiKey.store("PREFLOOP_API_KEYS[" + i + "]", secret, "environment");
                }
            }
        });
    }

    static void checkSeeded(List<String> keys) {
        for (int i = 0; i < keys.size(); i++) {
            int n = keys.get(i).trim().length();
            if (n > 0 && n < MIN_SEEDED_LENGTH) {
                throw new IllegalStateException("PREFLOOP_API_KEYS[" + i + "] has " + n + " characters; seeded API keys need at least "
                        + MIN_SEEDED_LENGTH + " (draw one with: openssl rand -base64 30)");
            }
        }
    }

    void refresh() {
        activeHashes = QuarkusTransaction.requiringNew().call(() -> ApiKey.<ApiKey>list("revokedAt is null").stream()
                .map(k -> k.keyHash).collect(Collectors.toUnmodifiableSet()));
    }

    private void refreshQuietly() {
        try {
            refresh();
        } catch (RuntimeException e) {
            LOG.warnf("could not refresh API keys, keeping the last known set: %s", e.getMessage());
        }
    }

    public boolean valid(String secret) {
        return secret != null && !secret.isEmpty() && activeHashes.contains(ApiKey.hash(secret));
    }
}
