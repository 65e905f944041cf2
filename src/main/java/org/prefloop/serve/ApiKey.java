package org.prefloop.serve;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.OffsetDateTime;
import java.util.HexFormat;
import java.util.Optional;

/** A key an app sends as {@code Authorization: Bearer ...} to /v1. Only its SHA-256 is stored. */
@Entity
@Table(name = "api_keys")
public class ApiKey extends PanacheEntityBase {
    private static final SecureRandom RANDOM = new SecureRandom();

    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    public String name;

    @Column(name = "key_hash")
    public String keyHash;

    public String prefix;

    @Column(name = "created_by")
    public String createdBy;

    @Column(name = "created_at", insertable = false, updatable = false)
    public OffsetDateTime createdAt;

    @Column(name = "revoked_at")
    public OffsetDateTime revokedAt;

    /** A new random key: "pl-" and 40 hex characters. */
    static String newSecret() {
        byte[] b = new byte[20];
        RANDOM.nextBytes(b);
        return "pl-" + HexFormat.of().formatHex(b);
    }

    static String hash(String secret) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The characters shown to recognise a key in a list: never more than a third of it (and at most 8). */
    static String shownPrefix(String secret) {
        return secret.substring(0, Math.min(8, secret.length() / 3));
    }

    static ApiKey store(String name, String secret, String createdBy) {
        ApiKey k = new ApiKey();
        k.name = name;
        k.keyHash = hash(secret);
        k.prefix = shownPrefix(secret);
        k.createdBy = createdBy;
        k.persist();
        return k;
    }

    static Optional<ApiKey> active(String secret) {
        return find("keyHash = ?1 and revokedAt is null", hash(secret)).firstResultOptional();
    }
}
