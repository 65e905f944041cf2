package org.prefloop.identity;

import io.quarkus.elytron.security.common.BcryptUtil;
import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import io.quarkus.security.jpa.Password;
import io.quarkus.security.jpa.Roles;
import io.quarkus.security.jpa.UserDefinition;
import io.quarkus.security.jpa.Username;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

import java.time.OffsetDateTime;
import java.util.Optional;

/** A person who signs in: an annotator, or an admin of the alignment team. Passwords are bcrypt. */
@Entity
@Table(name = "users")
@UserDefinition
public class User extends PanacheEntityBase {
    public static final String ANNOTATOR = "annotator";
    public static final String ADMIN = "admin";

    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    @Username
    public String username;

    @Password
    public String password;

    @Roles
    public String role;

    @Column(name = "created_at", insertable = false, updatable = false)
    public OffsetDateTime createdAt;

    public static User create(String username, String plainPassword, String role) {
        User u = new User();
        u.username = username;
        u.password = BcryptUtil.bcryptHash(plainPassword);
        u.role = role;
        u.persist();
        return u;
    }

    public static Optional<User> byName(String username) {
        return find("username", username).firstResultOptional();
    }
}
