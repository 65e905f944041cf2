package org.prefloop.console;

import io.quarkus.security.identity.SecurityIdentity;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.persistence.EntityManager;
import jakarta.transaction.Transactional;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.PUT;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import org.prefloop.collect.Choice;
import org.prefloop.collect.Comparison;
import org.prefloop.collect.ComparisonView;
import org.prefloop.collect.Preference;
import org.prefloop.identity.User;
import org.prefloop.platform.ProblemException;

import java.time.OffsetDateTime;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Disagreement review: the comparisons people split on (programmatic judges left out), newest
 * first, each with every vote, its rationale and time, and an admin's adjudicated verdict, which is
 * stored beside the votes (table {@code adjudications}) for datasets to prefer.
 */
@Path("/api/disagreements")
@Produces(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class DisagreementResource {
    static final int MAX_NOTE = 4000;

    @Inject
    EntityManager em;

    @Inject
    SecurityIdentity identity;

    public record Vote(String annotator, Choice choice, String rationale, Long timeSpentMs, OffsetDateTime submittedAt) {
    }

    public record Verdict(Choice choice, String note, String adjudicatedBy, OffsetDateTime adjudicatedAt) {
    }

    /** {@code tally}: votes per verdict; {@code adjudication}: null until an admin decides. */
    public record Disagreement(ComparisonView comparison, List<Vote> votes, Map<String, Long> tally, Verdict adjudication) {
    }

    public record AdjudicationInput(String choice, String note) {
    }

    @GET
    @Transactional
    public List<Disagreement> list(@QueryParam("limit") Integer limit, @QueryParam("undecided") boolean undecided) {
        int n = limit == null ? 50 : limit;
        if (n < 1 || n > 500) throw ProblemException.invalid("limit", "limit must be between 1 and 500");
        @SuppressWarnings("unchecked")
        List<Number> ids = em.createNativeQuery("""
                select p.comparison_id from preferences p
                where p.judge is null
                  and (?1 = false or not exists (select 1 from adjudications a where a.comparison_id = p.comparison_id))
                group by p.comparison_id having count(distinct p.choice) > 1
                order by max(p.submitted_at) desc, p.comparison_id desc""")
                .setParameter(1, undecided).setMaxResults(n).getResultList();
        return ids.stream().map(id -> view(id.longValue())).toList();
    }

    @PUT
    @Path("/{id}/adjudication")
    @Consumes(MediaType.APPLICATION_JSON)
    @Transactional
    public Disagreement adjudicate(@PathParam("id") long id, AdjudicationInput body) {
        if (body == null) throw ProblemException.badRequest(null, "a JSON body with 'choice' is required");
        if (Comparison.findById(id) == null) throw ProblemException.notFound("id", "comparison " + id + " does not exist");
        if (body.choice() == null) throw ProblemException.invalid("choice", "choice is required: A, B, tie or both_bad");
        Choice choice;
        try {
            choice = Choice.parse(body.choice());
        } catch (IllegalArgumentException e) {
            throw ProblemException.invalid("choice", e.getMessage());
        }
        String note = body.note() == null || body.note().isBlank() ? null : body.note().strip();
        if (note != null && note.length() > MAX_NOTE) throw ProblemException.invalid("note", "note is longer than " + MAX_NOTE + " characters");
        Adjudication a = Adjudication.findById(id);
        if (a == null) {
            a = new Adjudication();
            a.comparisonId = id;
        }
        a.choice = choice.wire();
        a.note = note;
        a.adjudicatedBy = identity.getPrincipal().getName();
        a.adjudicatedAt = OffsetDateTime.now();
        a.persist();
        return view(id);
    }

    private Disagreement view(long id) {
        Comparison c = Comparison.findById(id);
        List<Vote> votes = Preference.forComparison(id).stream().filter(p -> p.judge == null)
                .map(p -> new Vote(p.annotator, Choice.parse(p.choice), p.rationale, p.timeSpentMs, p.submittedAt)).toList();
        Map<String, Long> tally = new TreeMap<>();
        for (Vote v : votes) tally.merge(v.choice().wire(), 1L, Long::sum);
        Adjudication a = Adjudication.findById(id);
        Verdict verdict = a == null ? null : new Verdict(Choice.parse(a.choice), a.note, a.adjudicatedBy, a.adjudicatedAt);
        return new Disagreement(ComparisonView.of(c), votes, tally, verdict);
    }
}
