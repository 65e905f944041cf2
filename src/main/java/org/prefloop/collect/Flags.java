package org.prefloop.collect;

import com.fasterxml.jackson.databind.JsonNode;
import io.quarkus.security.identity.SecurityIdentity;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.persistence.EntityManager;
import jakarta.transaction.Transactional;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.prefloop.identity.User;
import org.prefloop.platform.AuditLog;
import org.prefloop.platform.ProblemException;

import java.time.OffsetDateTime;
import java.util.List;
import java.util.Set;

/**
 * Flagging: an annotator marks the comparison on their screen as harmful or broken; it leaves every
 * queue at once (their assignment is skipped) until an admin restores it or removes it for good.
 */
@Path("/api/flags")
@Produces(MediaType.APPLICATION_JSON)
public class Flags {
    static final Set<String> REASONS = Set.of("harmful", "broken");
    static final int MAX_NOTE = 4000;
    /** SQL: the comparison has an open flag or was removed by a review. */
    static final String WITHHELD = "exists (select 1 from comparison_flags f where f.comparison_id = %s "
            + "and (f.resolution is null or f.resolution = 'removed'))";

    @Inject
    EntityManager em;

    @Inject
    TaskQueue queue;

    @Inject
    SecurityIdentity identity;

    @Inject
    AuditLog audit;

    public record Flag(long id, ComparisonView comparison, String annotator, String reason, String note, OffsetDateTime flaggedAt,
                       String resolution, String resolvedBy, OffsetDateTime resolvedAt) {
    }

    static boolean withheld(long comparisonId) {
        return !Assignment.getEntityManager().createNativeQuery("select 1 from comparisons c where c.id = ?1 and " + WITHHELD.formatted("c.id"))
                .setParameter(1, comparisonId).getResultList().isEmpty();
    }

    /** {@code POST /api/tasks/{assignmentId}/flag} (TaskResource): {@code {"reason": "harmful" | "broken", "note"?}}. */
    @RolesAllowed({User.ANNOTATOR, User.ADMIN})
    @Transactional
    public void flag(long assignmentId, JsonNode body) {
        if (body == null || !body.isObject()) throw ProblemException.badRequest(null, "a JSON object with 'reason' is required");
        JsonNode r = body.get("reason");
        if (r == null || !r.isTextual() || !REASONS.contains(r.asText())) {
            throw ProblemException.invalid("reason", "reason must be 'harmful' or 'broken'");
        }
        JsonNode n = body.get("note");
        String note = n == null || n.isNull() || n.asText().isBlank() ? null : n.asText().strip();
        if (note != null && note.length() > MAX_NOTE) throw ProblemException.invalid("note", "note is longer than " + MAX_NOTE + " characters");
        String me = identity.getPrincipal().getName();
        Assignment a = Assignment.findById(assignmentId);
        if (a == null || !a.annotator.equals(me)) throw ProblemException.notFound("assignmentId", "you have no assignment " + assignmentId);
        if (a.answeredAt != null) throw ProblemException.conflict("assignmentId", "assignment " + assignmentId + " is already answered");
        queue.skip(assignmentId, me);
        em.createNativeQuery("insert into comparison_flags (comparison_id, annotator, reason, note) values (?1, ?2, ?3, ?4)")
                .setParameter(1, a.comparisonId).setParameter(2, me).setParameter(3, r.asText()).setParameter(4, note).executeUpdate();
    }

    /** Flags, newest first; {@code open=true}: only those awaiting review. */
    @GET
    @RolesAllowed(User.ADMIN)
    @Transactional
    public List<Flag> list(@QueryParam("open") boolean open) {
        @SuppressWarnings("unchecked")
        List<Object[]> rows = em.createNativeQuery("select id, comparison_id, annotator, reason, note, flagged_at, resolution, resolved_by, resolved_at "
                + "from comparison_flags " + (open ? "where resolution is null " : "") + "order by id desc").setMaxResults(200).getResultList();
        return rows.stream().map(f -> new Flag(((Number) f[0]).longValue(), ComparisonView.of(Comparison.findById(((Number) f[1]).longValue())),
                (String) f[2], (String) f[3], (String) f[4], time(f[5]), (String) f[6], (String) f[7], time(f[8]))).toList();
    }

    /** {@code {"resolution": "restored" | "removed"}}: back into the queues, or out of them for good. Every open flag on the comparison is settled. */
    @POST
    @Path("/{id}/resolve")
    @Consumes(MediaType.APPLICATION_JSON)
    @RolesAllowed(User.ADMIN)
    @Transactional
    public Response resolve(@PathParam("id") long id, JsonNode body) {
        JsonNode r = body == null ? null : body.get("resolution");
        if (r == null || !r.isTextual() || !Set.of("restored", "removed").contains(r.asText())) {
            throw ProblemException.invalid("resolution", "resolution must be 'restored' or 'removed'");
        }
        List<?> comparison = em.createNativeQuery("select comparison_id from comparison_flags where id = ?1").setParameter(1, id).getResultList();
        if (comparison.isEmpty()) throw ProblemException.notFound("id", "flag " + id + " does not exist");
        long comparisonId = ((Number) comparison.get(0)).longValue();
        int n = em.createNativeQuery("update comparison_flags set resolution = ?1, resolved_by = ?2, resolved_at = ?3 "
                        + "where comparison_id = ?4 and resolution is null")
                .setParameter(1, r.asText()).setParameter(2, identity.getPrincipal().getName()).setParameter(3, OffsetDateTime.now())
                .setParameter(4, comparisonId).executeUpdate();
        if (n == 0) throw ProblemException.conflict("id", "flag " + id + " is already resolved");
        audit.record("flag." + r.asText(), "comparison " + comparisonId, null);
        return Response.noContent().build();
    }

    private static OffsetDateTime time(Object v) {
        if (v == null) return null;
        if (v instanceof OffsetDateTime o) return o;
        if (v instanceof java.time.Instant i) return i.atOffset(java.time.ZoneOffset.UTC);
        if (v instanceof java.sql.Timestamp t) return t.toInstant().atOffset(java.time.ZoneOffset.UTC);
        throw new IllegalStateException("unexpected timestamp " + v.getClass());
    }
}
