package org.prefloop.platform;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.security.identity.SecurityIdentity;
import jakarta.inject.Inject;
import jakarta.persistence.EntityManager;


/**
 * The audit log of admin actions (users, roles, passwords, dataset freezes, runs, promotions):
 * who did what to what, when. Written in the caller's transaction when there is one, so an action
 * and its record commit together; read by admins at {@code GET /api/audit}.
 */
@jakarta.enterprise.context.ApplicationScoped
public class AuditLog {
    @Inject
    EntityManager em;
    @Inject
    SecurityIdentity identity;

    /** Records an action by the signed-in caller. */
    public void record(String action, String target, String detail) {
        String actor = identity == null || identity.isAnonymous() ? "system" : identity.getPrincipal().getName();
        QuarkusTransaction.joiningExisting().run(() -> em.createNativeQuery(
                        "insert into audit_log (actor, action, target, detail) values (?1, ?2, ?3, ?4)")
                .setParameter(1, actor).setParameter(2, action).setParameter(3, cut(target, 200)).setParameter(4, cut(detail, 2000))
                .executeUpdate());
    }

    private static String cut(String s, int max) {
        return s == null || s.length() <= max ? s : s.substring(0, max);
    }
}
