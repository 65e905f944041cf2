package org.prefloop.identity;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

import java.security.SecureRandom;
import java.util.Base64;
import java.util.Optional;

/**
 * On the first start (no users at all) creates the admin {@code admin}, with the password from
 * PREFLOOP_ADMIN_PASSWORD, or a generated one printed to the log exactly this once.
 */
@ApplicationScoped
public class FirstAdmin {
    private static final Logger LOG = Logger.getLogger(FirstAdmin.class);

    @ConfigProperty(name = "prefloop.admin-password")
    Optional<String> configuredPassword;

    void onStart(@Observes StartupEvent event) {
        QuarkusTransaction.requiringNew().run(() -> {
            if (User.count() > 0) return;
            String password = configuredPassword.filter(p -> !p.isBlank()).orElse(null);
            boolean generated = password == null;
            if (generated) {
                byte[] random = new byte[18];
                new SecureRandom().nextBytes(random);
                password = Base64.getUrlEncoder().withoutPadding().encodeToString(random);
            }
            User.create("admin", password, User.ADMIN);
            if (generated) {
                LOG.warnf("Created the first admin. Sign in as 'admin' with password: %s (shown once; set PREFLOOP_ADMIN_PASSWORD to choose it)", password);
            } else {
                LOG.info("Created the first admin 'admin' with the password from PREFLOOP_ADMIN_PASSWORD");
            }
        });
    }
}
