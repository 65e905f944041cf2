package org.prefloop.identity;

import io.quarkus.arc.Arc;
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
import org.prefloop.platform.Settings;

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

    /** Set when an admin disabled the user: no way in works for them. */
    @Column(name = "disabled_at")
    public OffsetDateTime disabledAt;

    public boolean disabled() {
        return disabledAt != null;
    }

    public static User create(String username, String plainPassword, String role) {
        User u = new User();
        u.username = username;
        u.password = BcryptUtil.bcryptHash(plainPassword, bcryptCost());
        u.role = role;
        u.persist();
        return u;
    }

    /** Stores the bcrypt hash of a new password (prefloop.bcrypt-cost). Not named setPassword: Panache would route field writes through it. */
    public void changePassword(String plainPassword) {
        password = BcryptUtil.bcryptHash(plainPassword, bcryptCost());
    }

    /** bcrypt's cost (log2 of its rounds), prefloop.bcrypt-cost; an entity is no bean, so it asks the container. */
    private static int bcryptCost() {
        return Arc.container().instance(Settings.class).get().bcryptCost();
    }

    public static Optional<User> byName(String username) {
        return find("username", username).firstResultOptional();
    }
}
