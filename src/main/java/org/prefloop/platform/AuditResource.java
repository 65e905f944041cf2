package org.prefloop.platform;

import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.persistence.EntityManager;
import jakarta.ws.rs.DefaultValue;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;

import java.time.OffsetDateTime;
import java.util.List;

/** The audit log ({@link AuditLog}), newest first. */
@Path("/api/audit")
@Produces(MediaType.APPLICATION_JSON)
@RolesAllowed("admin")
public class AuditResource {
    @Inject
    EntityManager em;

    public record Entry(long id, OffsetDateTime at, String actor, String action, String target, String detail) {
    }

    @GET
    public List<Entry> list(@QueryParam("limit") @DefaultValue("100") int limit) {
        if (limit < 1 || limit > 1000) throw ProblemException.invalid("limit", "limit is between 1 and 1000");
        return QuarkusTransaction.requiringNew().call(() -> {
            @SuppressWarnings("unchecked")
            List<Object[]> rows = em.createNativeQuery("select id, at, actor, action, target, detail from audit_log order by id desc")
                    .setMaxResults(limit).getResultList();
            return rows.stream().map(r -> new Entry(((Number) r[0]).longValue(), at(r[1]), (String) r[2], (String) r[3], (String) r[4], (String) r[5]))
                    .toList();
        });
    }

    private static OffsetDateTime at(Object v) {
        if (v instanceof OffsetDateTime o) return o;
        if (v instanceof java.time.Instant i) return i.atOffset(java.time.ZoneOffset.UTC);
        if (v instanceof java.sql.Timestamp t) return t.toInstant().atOffset(java.time.ZoneOffset.UTC);
        return OffsetDateTime.parse(v.toString());
    }

}
