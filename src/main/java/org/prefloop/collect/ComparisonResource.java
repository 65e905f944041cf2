package org.prefloop.collect;

import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.transaction.Transactional;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.prefloop.identity.User;
import org.prefloop.platform.ProblemException;

import java.io.InputStream;
import java.net.URI;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.UUID;

/** Comparisons: created one at a time or imported in bulk; each keeps every raw judgment made on it. */
@Path("/api/comparisons")
@Produces(MediaType.APPLICATION_JSON)
public class ComparisonResource {

    @Inject
    ComparisonImport importer;

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    @RolesAllowed(User.ADMIN)
    @Transactional
    public Response create(ComparisonInput body) {
        if (body == null) throw ProblemException.badRequest(null, "a JSON body is required");
        Comparison c = body.validated().toEntity();
        c.persist();
        c.createdAt = OffsetDateTime.now();
        return Response.created(URI.create("/api/comparisons/" + c.id)).entity(ComparisonView.of(c)).build();
    }

    @GET
    @Path("/{id}")
    @RolesAllowed(User.ADMIN)
    public ComparisonView get(@PathParam("id") long id) {
        Comparison c = Comparison.findById(id);
        if (c == null) throw ProblemException.notFound("id", "comparison " + id + " does not exist");
        return ComparisonView.of(c);
    }

    /** JSON Lines, one comparison a line; streamed and stored in batches, so any size fits. */
    @POST
    @Path("/import")
    @Consumes({"application/x-ndjson", "application/jsonl", MediaType.TEXT_PLAIN})
    @RolesAllowed(User.ADMIN)
    public ComparisonImport.Report importLines(InputStream body) {
        return importer.run(body);
    }

    /** A raw judgment as stored: who, what (with its strength and per-criterion verdicts), when; the votes behind any consensus. */
    public record Judgment(UUID eventId, String annotator, String choice, String rationale, Long timeSpentMs,
                           OffsetDateTime submittedAt, OffsetDateTime storedAt, String strength, java.util.Map<String, String> criteria) {
    }

    private static java.util.Map<String, String> criteria(Preference p) {
        if (p.criteria == null) return null;
        try {
            return Comparison.JSON.readValue(p.criteria, new com.fasterxml.jackson.core.type.TypeReference<java.util.LinkedHashMap<String, String>>() {
            });
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    @GET
    @Path("/{id}/preferences")
    @RolesAllowed(User.ADMIN)
    public List<Judgment> preferences(@PathParam("id") long id) {
        if (Comparison.findById(id) == null) throw ProblemException.notFound("id", "comparison " + id + " does not exist");
        return Preference.forComparison(id).stream()
                .map(p -> new Judgment(p.eventId, p.annotator, p.choice, p.rationale, p.timeSpentMs, p.submittedAt, p.storedAt,
                        p.strength, criteria(p)))
                .toList();
    }
}
