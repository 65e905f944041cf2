package org.prefloop.identity;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;
import org.prefloop.platform.Settings;

import java.security.SecureRandom;
import java.util.Base64;

/**
 * On the first start (no users at all) creates the admin {@code admin}, with the password from
 * PREFLOOP_ADMIN_PASSWORD, or a generated one printed to the log exactly this once.
 */
@ApplicationScoped
public class FirstAdmin {
    private static final Logger LOG = Logger.getLogger(FirstAdmin.class);

    @Inject
    Settings settings;

    void onStart(@Observes StartupEvent event) {
        QuarkusTransaction.requiringNew().run(() -> {
            if (User.count() > 0) return;
            String password = settings.adminPassword().filter(p -> !p.isBlank()).orElse(null);
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
