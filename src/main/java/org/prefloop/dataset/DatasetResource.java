package org.prefloop.dataset;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.security.identity.SecurityIdentity;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.StreamingOutput;
import org.prefloop.identity.User;
import org.prefloop.platform.ProblemException;

import java.io.BufferedWriter;
import java.io.OutputStreamWriter;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.OffsetDateTime;
import java.util.List;

/** Frozen dataset versions: freeze from stored judgments, upload JSON Lines, list, export in TRL's formats. */
@Path("/api/datasets")
@Produces(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class DatasetResource {

    @Inject
    DatasetFreezer freezer;

    @Inject
    org.prefloop.platform.AuditLog audit;

    @Inject
    DatasetUpload upload;

    @Inject
    DatasetExporter exporter;

    @Inject
    ObjectMapper json;

    @Inject
    SecurityIdentity identity;

    @Inject
    org.prefloop.collect.Criteria criteria;

    public record FreezeRequest(String name, String kind, DatasetFilters filters) {
    }

    public record DatasetView(long id, String name, String kind, String contentHash, int items, JsonNode filters,
                              JsonNode summary, String createdBy, OffsetDateTime createdAt) {
    }

    DatasetView view(Dataset d) {
        try {
            return new DatasetView(d.id, d.name, d.kind, d.contentHash, d.itemCount, json.readTree(d.filters),
                    json.readTree(d.summary), d.createdBy, d.createdAt);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    public Response freeze(FreezeRequest body) throws JsonProcessingException {
        if (body == null) throw ProblemException.badRequest(null, "a JSON body is required");
        String name = requireName(body.name());
        String kind = body.kind() == null ? Dataset.PREFERENCE : body.kind();
        if (!kind.equals(Dataset.PREFERENCE) && !kind.equals(Dataset.SFT) && !kind.equals(Dataset.KTO)) {
            throw ProblemException.invalid("kind", "kind must be 'preference', 'sft' or 'kto'");
        }
        DatasetFilters filters = body.filters() == null ? DatasetFilters.NONE : body.filters();
        if (filters.minAgreement() != null && (filters.minAgreement() < 0 || filters.minAgreement() > 1)) {
            throw ProblemException.invalid("filters.minAgreement", "minAgreement is a share between 0 and 1");
        }
        if (filters.judgeMinAgreement() != null && (filters.judgeMinAgreement() < 0 || filters.judgeMinAgreement() > 1)) {
            throw ProblemException.invalid("filters.judgeMinAgreement", "judgeMinAgreement is a share between 0 and 1");
        }
        if (filters.minVotes() != null && filters.minVotes() < 1) {
            throw ProblemException.invalid("filters.minVotes", "minVotes is a number of people, 1 or more");
        }
        if (filters.criterion() != null && !criteria.names().contains(filters.criterion())) {
            throw ProblemException.invalid("filters.criterion", "'" + filters.criterion() + "' is not a criterion of this project"
                    + (criteria.names().isEmpty() ? " (it asks for none)" : " (" + String.join(", ", criteria.names()) + ")"));
        }
        if (filters.criterion() != null && filters.strengthWeighted()) {
            throw ProblemException.invalid("filters.weightByStrength", "strength is said of the overall verdict, not of a criterion");
        }
        DatasetFreezer.Frozen frozen = freezer.select(kind, filters);
        if (frozen.items().isEmpty()) {
            throw ProblemException.invalid("filters", "no comparison passes these filters: " + json.writeValueAsString(frozen.summary()));
        }
        Dataset d = freezer.store(name, kind, json.writeValueAsString(filters), json.writeValueAsString(frozen.summary()),
                frozen.items(), identity.getPrincipal().getName());
        audit.record("dataset.freeze", "dataset " + d.id, d.name + " (" + kind + ", " + d.contentHash + ")");
        return Response.created(URI.create("/api/datasets/" + d.id)).entity(view(Dataset.findById(d.id))).build();
    }

    /** JSON Lines in TRL's formats: {"messages"} for sft, {"prompt","chosen","rejected"[,"weight"]} for preference. */
    @POST
    @Path("/upload")
    @Consumes({"application/x-ndjson", "application/jsonl", MediaType.TEXT_PLAIN})
    public Response upload(@QueryParam("name") String name, @QueryParam("kind") String kind, java.io.InputStream body)
            throws JsonProcessingException {
        String k = kind == null ? Dataset.SFT : kind;
        if (!k.equals(Dataset.PREFERENCE) && !k.equals(Dataset.SFT)) throw ProblemException.invalid("kind", "kind must be 'preference' or 'sft'");
        List<DatasetItem> items = upload.read(body, k);
        Dataset d = freezer.store(requireName(name), k, "{\"uploaded\":true}",
                json.writeValueAsString(new DatasetFreezer.Summary(0, 0, items.size(), 0, 0, 0, 0)), items,
                identity.getPrincipal().getName());
        audit.record("dataset.upload", "dataset " + d.id, d.name + " (" + d.contentHash + ")");
        return Response.created(URI.create("/api/datasets/" + d.id)).entity(view(Dataset.findById(d.id))).build();
    }

    @GET
    public List<DatasetView> list() {
        return Dataset.<Dataset>listAll(io.quarkus.panache.common.Sort.descending("id")).stream().map(this::view).toList();
    }

    @GET
    @Path("/{id}")
    public DatasetView get(@PathParam("id") long id) {
        return view(find(id));
    }

    @GET
    @Path("/{id}/export")
    @Produces("application/x-ndjson")
    public Response export(@PathParam("id") long id) {
        Dataset d = find(id);
        StreamingOutput out = stream -> exporter.write(id, new BufferedWriter(new OutputStreamWriter(stream, StandardCharsets.UTF_8)));
        return Response.ok(out).header("X-PrefLoop-Content-Hash", d.contentHash)
                .header("Content-Disposition", "attachment; filename=\"" + d.name + "-" + d.contentHash.substring(0, 12) + ".jsonl\"")
                .build();
    }


    private static Dataset find(long id) {
        Dataset d = Dataset.findById(id);
        if (d == null) throw ProblemException.notFound("id", "dataset " + id + " does not exist");
        return d;
    }

    private static String requireName(String name) {
        if (name == null || !name.matches("[A-Za-z0-9._-]{1,200}")) {
            throw ProblemException.invalid("name", "name must be 1-200 letters, digits, '.', '_' or '-'");
        }
        return name;
    }
}
