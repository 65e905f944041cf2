package org.prefloop.identity;

import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.inject.Singleton;
import jakarta.persistence.EntityManager;
import org.prefloop.platform.Settings;

import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.Locale;
import java.util.Optional;

/**
 * Rate limit on every way in (the sign-in form and HTTP Basic): after {@code max-failures} failed
 * attempts on one user name (or five times as many from one client address) within the window,
 * further attempts are refused until the oldest failure leaves the window, even with the right
 * password. The failures live in the store ({@code sign_in_failures}), so all replicas share one
 * count and one lock.
 */
@Singleton
public class SignInThrottle {
    private final int maxFailures;
    private final int maxAddressFailures;
    private final Duration window;

    SignInThrottle(Settings settings) {
        this.maxFailures = settings.signIn().maxFailures();
        this.maxAddressFailures = settings.signIn().maxAddressFailures();
        this.window = settings.signIn().window();
    }

    /** How long this user name or address must wait; empty when it may try now. */
    public Optional<Duration> waitBefore(String username, String address) {
        OffsetDateTime now = OffsetDateTime.now(ZoneOffset.UTC);
        return QuarkusTransaction.requiringNew().call(() ->
                later(wait(userKey(username), maxFailures, now), wait(addrKey(address), maxAddressFailures, now)));
    }

    public void failed(String username, String address) {
        OffsetDateTime now = OffsetDateTime.now(ZoneOffset.UTC);
        QuarkusTransaction.requiringNew().run(() -> {
            EntityManager em = User.getEntityManager();
            for (String key : new String[]{userKey(username), addrKey(address)}) {
                em.createNativeQuery("delete from sign_in_failures where subject = ?1 and failed_at < ?2")
                        .setParameter(1, key).setParameter(2, now.minus(window)).executeUpdate();
                em.createNativeQuery("insert into sign_in_failures (subject, failed_at) values (?1, ?2)")
                        .setParameter(1, key).setParameter(2, now).executeUpdate();
            }
        });
    }

    public void succeeded(String username) {
        QuarkusTransaction.requiringNew().run(() -> User.getEntityManager()
                .createNativeQuery("delete from sign_in_failures where subject = ?1").setParameter(1, userKey(username)).executeUpdate());
    }

    private static String userKey(String username) {
        String u = username.toLowerCase(Locale.ROOT);
        return "user:" + (u.length() > 150 ? u.substring(0, 150) : u);
    }

    private static String addrKey(String address) {
        return "addr:" + (address == null ? "unknown" : address);
    }

    private Optional<Duration> wait(String key, int limit, OffsetDateTime now) {
        Object[] row = (Object[]) User.getEntityManager()
                .createNativeQuery("select count(*), min(failed_at) from sign_in_failures where subject = ?1 and failed_at >= ?2")
                .setParameter(1, key).setParameter(2, now.minus(window)).getSingleResult();
        if (((Number) row[0]).intValue() < limit) return Optional.empty();
        OffsetDateTime oldest = toOffset(row[1]);
        Duration left = Duration.between(now, oldest.plus(window));
        return Optional.of(left.isNegative() ? Duration.ofSeconds(1) : left);
    }

    private static OffsetDateTime toOffset(Object v) {
        if (v instanceof OffsetDateTime o) return o;
        if (v instanceof java.time.Instant i) return i.atOffset(ZoneOffset.UTC);
        if (v instanceof java.sql.Timestamp t) return t.toInstant().atOffset(ZoneOffset.UTC);
        if (v instanceof java.time.ZonedDateTime z) return z.toOffsetDateTime();
        return OffsetDateTime.parse(v.toString());
    }

    private static Optional<Duration> later(Optional<Duration> a, Optional<Duration> b) {
        if (a.isEmpty()) return b;
        if (b.isEmpty()) return a;
        return a.get().compareTo(b.get()) >= 0 ? a : b;
    }
}
