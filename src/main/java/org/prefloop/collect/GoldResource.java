package org.prefloop.collect;

import com.fasterxml.jackson.databind.JsonNode;
import io.quarkus.security.identity.SecurityIdentity;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.persistence.EntityManager;
import jakarta.transaction.Transactional;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.DELETE;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.prefloop.identity.User;
import org.prefloop.platform.AuditLog;
import org.prefloop.platform.ProblemException;

import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.util.List;

/** Admin: gold items (comparisons with a known answer), each annotator's gold accuracy per day, and resuming a paused annotator. */
@Path("/api/gold")
@Produces(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class GoldResource {
    @Inject
    EntityManager em;

    @Inject
    SecurityIdentity identity;

    @Inject
    AuditLog audit;

    public record Gold(long comparisonId, String choice, String createdBy, OffsetDateTime createdAt) {
    }

    /** One annotator's gold answers on one day (the server's calendar day). */
    public record Day(String annotator, LocalDate day, long answered, long correct) {
    }

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    @Transactional
    public Response mark(JsonNode body) {
        if (body == null || !body.isObject()) throw ProblemException.badRequest(null, "a JSON object with comparisonId and choice is required");
        JsonNode id = body.get("comparisonId");
        if (id == null || !id.isIntegralNumber()) throw ProblemException.invalid("comparisonId", "comparisonId must be the numeric id of a comparison");
        JsonNode ch = body.get("choice");
        if (ch == null || !ch.isTextual()) throw ProblemException.invalid("choice", "choice is required: the known answer, A, B, tie or both_bad");
        Choice choice;
        try {
            choice = Choice.parse(ch.asText());
        } catch (IllegalArgumentException e) {
            throw ProblemException.invalid("choice", e.getMessage());
        }
        long comparisonId = id.asLong();
        if (Comparison.findById(comparisonId) == null) {
            throw ProblemException.notFound("comparisonId", "comparison " + comparisonId + " does not exist");
        }
        int updated = em.createNativeQuery("update gold_answers set choice = ?1 where comparison_id = ?2")
                .setParameter(1, choice.wire()).setParameter(2, comparisonId).executeUpdate();
        if (updated == 0) {
            em.createNativeQuery("insert into gold_answers (comparison_id, choice, created_by) values (?1, ?2, ?3)")
                    .setParameter(1, comparisonId).setParameter(2, choice.wire()).setParameter(3, me()).executeUpdate();
        }
        audit.record("gold.mark", "comparison " + comparisonId, choice.wire());
        return Response.status(updated == 0 ? 201 : 200).entity(get(comparisonId)).build();
    }

    @GET
    public List<Gold> list() {
        @SuppressWarnings("unchecked")
        List<Object[]> rows = em.createNativeQuery("select comparison_id, choice, created_by, created_at from gold_answers order by comparison_id")
                .getResultList();
        return rows.stream().map(GoldResource::gold).toList();
    }

    /** No longer gold: the comparison joins the ordinary queue and datasets again. */
    @DELETE
    @Path("/{comparisonId}")
    @Transactional
    public Response unmark(@PathParam("comparisonId") long comparisonId) {
        int n = em.createNativeQuery("delete from gold_answers where comparison_id = ?1").setParameter(1, comparisonId).executeUpdate();
        if (n == 0) throw ProblemException.notFound("comparisonId", "comparison " + comparisonId + " is not a gold item");
        audit.record("gold.unmark", "comparison " + comparisonId, null);
        return Response.noContent().build();
    }

    /** Each annotator's gold accuracy over time: answers and right answers per day, oldest first. */
    @GET
    @Path("/accuracy")
    public List<Day> accuracy() {
        @SuppressWarnings("unchecked")
        List<Object[]> rows = em.createNativeQuery("select p.annotator, p.submitted_at, case when p.choice = g.choice then 1 else 0 end "
                + "from preferences p join gold_answers g on g.comparison_id = p.comparison_id where p.judge is null "
                + "order by p.annotator, p.submitted_at").getResultList();
        java.util.Map<String, java.util.TreeMap<LocalDate, long[]>> byDay = new java.util.TreeMap<>();
        for (Object[] r : rows) {
            LocalDate day = instant(r[1]).atZone(java.time.ZoneId.systemDefault()).toLocalDate();
            long[] n = byDay.computeIfAbsent((String) r[0], k -> new java.util.TreeMap<>()).computeIfAbsent(day, k -> new long[2]);
            n[0]++;
            n[1] += ((Number) r[2]).longValue();
        }
        return byDay.entrySet().stream().flatMap(a -> a.getValue().entrySet().stream()
                .map(d -> new Day(a.getKey(), d.getKey(), d.getValue()[0], d.getValue()[1]))).toList();
    }

    /** Lets a paused annotator work again; gold accuracy counts afresh from now. */
    @POST
    @Path("/annotators/{annotator}/resume")
    @Transactional
    public Response resume(@PathParam("annotator") String annotator) {
        int n = em.createNativeQuery("update annotator_pauses set paused_at = null, resumed_at = ?1, resumed_by = ?2 "
                        + "where annotator = ?3 and paused_at is not null")
                .setParameter(1, OffsetDateTime.now()).setParameter(2, me()).setParameter(3, annotator).executeUpdate();
        if (n == 0) throw ProblemException.conflict("annotator", annotator + " is not paused");
        audit.record("annotator.resume", "annotator " + annotator, null);
        return Response.noContent().build();
    }

    private Gold get(long comparisonId) {
        Object[] r = (Object[]) em.createNativeQuery("select comparison_id, choice, created_by, created_at from gold_answers where comparison_id = ?1")
                .setParameter(1, comparisonId).getSingleResult();
        return gold(r);
    }

    private static Gold gold(Object[] r) {
        return new Gold(((Number) r[0]).longValue(), (String) r[1], (String) r[2], instant(r[3]).atOffset(java.time.ZoneOffset.UTC));
    }

    /** A timestamp column as a native query returns it (Instant, OffsetDateTime or Timestamp by driver). */
    private static java.time.Instant instant(Object v) {
        if (v instanceof java.time.Instant i) return i;
        if (v instanceof OffsetDateTime o) return o.toInstant();
        if (v instanceof java.sql.Timestamp t) return t.toInstant();
        throw new IllegalStateException("unexpected timestamp " + v.getClass());
    }

    private String me() {
        return identity.getPrincipal().getName();
    }
}
