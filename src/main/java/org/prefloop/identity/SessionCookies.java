package org.prefloop.identity;

import jakarta.inject.Singleton;
import org.jboss.logging.Logger;
import org.prefloop.platform.Settings;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Optional;
import io.quarkus.narayana.jta.QuarkusTransaction;

/**
 * Issues and checks session cookies: {@code base64url(payload).base64url(HMAC-SHA256(payload))}.
 * Each session is also a row in the store ({@code sessions}, keyed by a hash of the random id in
 * the cookie), checked on every request: signing out, disabling the user, or changing their
 * password or role ends it at once on every replica. Replicas must share
 * {@code PREFLOOP_SESSION_KEY}; without one each process draws its own, and sessions end with it.
 */
@Singleton
public class SessionCookies {
    private static final Logger LOG = Logger.getLogger(SessionCookies.class);
    private static final Base64.Encoder B64 = Base64.getUrlEncoder().withoutPadding();
    private static final Base64.Decoder UNB64 = Base64.getUrlDecoder();
    private static final SecureRandom RANDOM = new SecureRandom();

    private final byte[] key;
    private final Duration lifetime;
    private final boolean secure;

    SessionCookies(Settings settings) {
        this.lifetime = settings.session().lifetime();
        this.secure = settings.session().secureCookie();
        String k = settings.session().key().filter(s -> !s.isBlank()).orElse(null);
        if (k == null) {
            this.key = randomBytes(32);
            LOG.warn("PREFLOOP_SESSION_KEY is not set: sessions are signed with a key drawn at start, so they end when this "
                    + "process stops and are not accepted by other replicas");
        } else {
            if (k.length() < 32) throw new IllegalStateException("PREFLOOP_SESSION_KEY must have at least 32 characters");
            this.key = sha256(k.getBytes(StandardCharsets.UTF_8));
        }
    }

    /** A new session for this user, and the Set-Cookie header value that carries it. */
    public Issued issue(String username, String role) {
        Session s = new Session(username, role, Instant.now().plus(lifetime), B64.encodeToString(randomBytes(18)), B64.encodeToString(randomBytes(24)));
        QuarkusTransaction.requiringNew().run(() -> User.getEntityManager()
                .createNativeQuery("delete from sessions where expires_at < ?1")
                .setParameter(1, java.time.OffsetDateTime.now().minusDays(1)).executeUpdate());
        QuarkusTransaction.requiringNew().run(() -> User.getEntityManager()
                .createNativeQuery("insert into sessions (id, username, role, expires_at) values (?1, ?2, ?3, ?4)")
                .setParameter(1, storedId(s.id())).setParameter(2, username).setParameter(3, role)
                .setParameter(4, s.expires().atOffset(java.time.ZoneOffset.UTC)).executeUpdate());
        String payload = String.join("\n", s.username(), s.role(), String.valueOf(s.expires().getEpochSecond()), s.csrf(), s.id());
        String value = B64.encodeToString(payload.getBytes(StandardCharsets.UTF_8)) + "." + B64.encodeToString(mac(payload));
        return new Issued(s, cookie(value, lifetime.toSeconds()));
    }

    public record Issued(Session session, String setCookie) {
    }

    /** The session in a cookie value, if it is signed with our key and has not expired. */
    public Optional<Session> read(String value) {
        if (value == null) return Optional.empty();
        int dot = value.indexOf('.');
        if (dot < 0) return Optional.empty();
        try {
            String payload = new String(UNB64.decode(value.substring(0, dot)), StandardCharsets.UTF_8);
            if (!MessageDigest.isEqual(mac(payload), UNB64.decode(value.substring(dot + 1)))) return Optional.empty();
            String[] f = payload.split("\n", -1);
            if (f.length != 5) return Optional.empty();
            Instant expires = Instant.ofEpochSecond(Long.parseLong(f[2]));
            if (expires.isBefore(Instant.now())) return Optional.empty();
            Session s = new Session(f[0], f[1], expires, f[3], f[4]);
            return live(s) ? Optional.of(s) : Optional.empty();
        } catch (IllegalArgumentException malformed) {
            return Optional.empty();
        }
    }

    /** Whether the store still holds this session open, for a user who is enabled and still has its role. */
    private static boolean live(Session s) {
        return QuarkusTransaction.requiringNew().call(() -> !User.getEntityManager().createNativeQuery(
                        "select 1 from sessions s join users u on u.username = s.username where s.id = ?1 and s.ended_at is null "
                                + "and u.disabled_at is null and u.role = s.role")
                .setParameter(1, storedId(s.id())).getResultList().isEmpty());
    }

    /** Ends this one session (sign-out). */
    public void end(Session s) {
        QuarkusTransaction.requiringNew().run(() -> User.getEntityManager()
                .createNativeQuery("update sessions set ended_at = current_timestamp where id = ?1 and ended_at is null")
                .setParameter(1, storedId(s.id())).executeUpdate());
    }

    /** Ends every session of this user (disabled, password or role changed), in the caller's transaction when there is one. */
    public static void endAll(String username) {
        QuarkusTransaction.joiningExisting().run(() -> User.getEntityManager()
                .createNativeQuery("update sessions set ended_at = current_timestamp where username = ?1 and ended_at is null")
                .setParameter(1, username).executeUpdate());
    }

    private static String storedId(String id) {
        return java.util.HexFormat.of().formatHex(sha256(id.getBytes(StandardCharsets.UTF_8)));
    }

    /** The Set-Cookie value that removes the session from the browser. */
    public String cleared() {
        return cookie("", 0);
    }

    private String cookie(String value, long maxAgeSeconds) {
        return Session.COOKIE + "=" + value + "; Path=/; Max-Age=" + maxAgeSeconds + "; HttpOnly; SameSite=Strict"
                + (secure ? "; Secure" : "");
    }

    public boolean secure() {
        return secure;
    }

    public static String randomToken() {
        return B64.encodeToString(randomBytes(18));
    }

    private byte[] mac(String payload) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(payload.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    private static byte[] sha256(byte[] in) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(in);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    private static byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        RANDOM.nextBytes(b);
        return b;
    }
}
