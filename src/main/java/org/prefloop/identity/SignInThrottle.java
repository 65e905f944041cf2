package org.prefloop.identity;

import jakarta.inject.Singleton;
import org.eclipse.microprofile.config.inject.ConfigProperty;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Rate limit on sign-in: after {@code max-failures} failed attempts on one user name (or five
 * times as many from one client address) within the window, further attempts are refused until
 * the oldest failure leaves the window, even with the right password. Kept per process: with
 * several web replicas an attacker gets that many times the budget, still far from a guessing rate.
 */
@Singleton
public class SignInThrottle {
    private final int maxFailures;
    private final Duration window;
    private final Clock clock = Clock.systemUTC();
    private final Map<String, Deque<Instant>> failures = new ConcurrentHashMap<>();

    SignInThrottle(@ConfigProperty(name = "prefloop.sign-in.max-failures") int maxFailures,
                   @ConfigProperty(name = "prefloop.sign-in.window") Duration window) {
        this.maxFailures = maxFailures;
        this.window = window;
    }

    /** How long this user name or address must wait; empty when it may try now. */
    public Optional<Duration> waitBefore(String username, String address) {
        Instant now = clock.instant();
        return later(wait("user:" + username.toLowerCase(), maxFailures, now), wait("addr:" + address, maxFailures * 5, now));
    }

    public void failed(String username, String address) {
        Instant now = clock.instant();
        for (String key : new String[]{"user:" + username.toLowerCase(), "addr:" + address}) {
            Deque<Instant> d = failures.computeIfAbsent(key, k -> new ArrayDeque<>());
            synchronized (d) {
                d.addLast(now);
            }
        }
    }

    public void succeeded(String username) {
        failures.remove("user:" + username.toLowerCase());
    }

    private Optional<Duration> wait(String key, int limit, Instant now) {
        Deque<Instant> d = failures.get(key);
        if (d == null) return Optional.empty();
        synchronized (d) {
            while (!d.isEmpty() && d.peekFirst().isBefore(now.minus(window))) d.removeFirst();
            if (d.size() < limit) return Optional.empty();
            return Optional.of(Duration.between(now, d.peekFirst().plus(window)));
        }
    }

    private static Optional<Duration> later(Optional<Duration> a, Optional<Duration> b) {
        if (a.isEmpty()) return b;
        if (b.isEmpty()) return a;
        return a.get().compareTo(b.get()) >= 0 ? a : b;
    }
}
