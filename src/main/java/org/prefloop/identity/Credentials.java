package org.prefloop.identity;

import io.quarkus.elytron.security.common.BcryptUtil;
import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.inject.Inject;
import jakarta.inject.Singleton;
import org.prefloop.platform.Settings;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Checks a user name and password, the same way for every way in (the sign-in form and HTTP Basic):
 * throttled first (a locked name is refused even with the right password), an unknown name pays
 * the same bcrypt check as a known one (no timing tells names apart), a password over bcrypt's 72
 * bytes is refused (bcrypt would ignore the rest). A verified password is remembered for a minute
 * as a salted SHA-256 bound to the stored hash, so Basic clients at volume do not pay bcrypt on
 * every request; a changed password (another stored hash) no longer matches at once.
 */
@Singleton
public class Credentials {
    /** bcrypt reads at most 72 bytes of a password. */
    public static final int MAX_PASSWORD_BYTES = 72;
    static final Duration CACHE_TTL = Duration.ofSeconds(60);
    private static final int CACHE_MAX = 10_000;

    @Inject
    SignInThrottle throttle;

    private final byte[] salt = new byte[32];
    private final String dummyHash;
    private final Map<String, Cached> verified = new ConcurrentHashMap<>();

    private record Cached(byte[] digest, long until) {
    }

    public sealed interface Result permits Ok, Refused, Locked {
    }

    public record Ok(User user) implements Result {
    }

    public record Refused() implements Result {
    }

    public record Locked(Duration retryAfter) implements Result {
    }

    @Inject
    Credentials(Settings settings) {
        new SecureRandom().nextBytes(salt);
        dummyHash = BcryptUtil.bcryptHash("no-such-user-" + new SecureRandom().nextLong(), settings.bcryptCost());
    }

    public Result check(String username, String password, String address) {
        if (username == null || password == null || username.length() > 64) return new Refused();
        Optional<Duration> wait = throttle.waitBefore(username, address);
        if (wait.isPresent()) return new Locked(wait.get());
        Optional<User> user = QuarkusTransaction.requiringNew().call(() -> User.byName(username));
        boolean tooLong = password.getBytes(StandardCharsets.UTF_8).length > MAX_PASSWORD_BYTES;
        Verdict v;
        if (user.isEmpty() || tooLong) {
            BcryptUtil.matches(password, dummyHash); // the same work as for a known name
            v = Verdict.WRONG;
        } else {
            v = cachedOrBcrypt(user.get(), password);
        }
        if (v == Verdict.WRONG || user.get().disabled()) {
            throttle.failed(username, address);
            return new Refused();
        }
        // a remembered password was checked by bcrypt within the minute, which cleared the failures then
        if (v == Verdict.CHECKED) throttle.succeeded(username);
        return new Ok(user.get());
    }

    /** Forgets every remembered password of this user (password changed, user disabled). */
    public void forget(String username) {
        verified.remove(username);
    }

    private enum Verdict { WRONG, CHECKED, REMEMBERED }

    private Verdict cachedOrBcrypt(User user, String password) {
        byte[] digest = digest(user.password, password);
        Cached c = verified.get(user.username);
        long now = System.nanoTime();
        if (c != null && now - c.until() < 0 && MessageDigest.isEqual(c.digest(), digest)) return Verdict.REMEMBERED;
        if (!BcryptUtil.matches(password, user.password)) return Verdict.WRONG;
        if (verified.size() >= CACHE_MAX) verified.clear();
        verified.put(user.username, new Cached(digest, now + CACHE_TTL.toNanos()));
        return Verdict.CHECKED;
    }

    private byte[] digest(String storedHash, String password) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(salt);
            sha.update(storedHash.getBytes(StandardCharsets.UTF_8));
            sha.update((byte) 0);
            return sha.digest(password.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
