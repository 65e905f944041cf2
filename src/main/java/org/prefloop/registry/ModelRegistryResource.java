package org.prefloop.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.panache.common.Sort;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.transaction.Transactional;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import org.prefloop.eval.EvaluationGate;
import org.prefloop.eval.HeadToHead;
import org.prefloop.eval.PromotionGate;
import org.prefloop.identity.User;
import org.prefloop.platform.ProblemException;

import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** The registry of model versions: lineage, metrics, and promotion (rollback is promoting an earlier version). */
@Path("/api/models")
@Produces(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class ModelRegistryResource {

    @Inject
    ObjectMapper json;
    @Inject
    org.prefloop.platform.AuditLog audit;
    @Inject
    jakarta.enterprise.event.Event<VersionPromoted> promoting;

    public record VersionView(long id, String name, Long parentId, String baseModel, String adapterPath, Long runId,
                              JsonNode datasetHashes, JsonNode runSpec, JsonNode metrics, JsonNode forgetting,
                              OffsetDateTime createdAt, OffsetDateTime promotedAt, boolean promoted) {
    }

    VersionView view(ModelVersion v, Long promotedId) {
        return new VersionView(v.id, v.name, v.parentId, v.baseModel, v.adapterPath, v.runId, tree(v.datasetHashes),
                tree(v.runSpec), tree(v.metrics), tree(v.forgetting), v.createdAt, v.promotedAt, v.id.equals(promotedId));
    }

    private JsonNode tree(String text) {
        try {
            return text == null ? null : json.readTree(text);
        } catch (java.io.IOException e) {
            return json.getNodeFactory().textNode(text);
        }
    }

    @GET
    public List<VersionView> list() {
        Long promoted = ModelVersion.promoted().map(v -> v.id).orElse(null);
        return ModelVersion.<ModelVersion>listAll(Sort.descending("id")).stream().map(v -> view(v, promoted)).toList();
    }

    @GET
    @Path("/{id}")
    public VersionView get(@PathParam("id") long id) {
        Long promoted = ModelVersion.promoted().map(v -> v.id).orElse(null);
        return view(find(id), promoted);
    }

    /**
     * Serves this version from now on. With {@code require=head-to-head} only if it beat its parent
     * head to head beyond chance ({@link PromotionGate}); with {@code require=evaluation} only if its
     * held-out evaluation beat its parent's beyond the interval ({@link EvaluationGate}); both
     * together as {@code require=evaluation,head-to-head} (or the parameter twice). Otherwise 409
     * with the figures of every gate that refused. With a
     * serving backend, 502/503 when it cannot load the version's adapter, and nothing is promoted.
     */
    @POST
    @Path("/{id}/promote")
    @Transactional
    public VersionView promote(@PathParam("id") long id, @QueryParam("require") List<String> require) {
        ModelVersion v = find(id);
        Set<String> gates = new LinkedHashSet<>();
        for (String r : require == null ? List.<String>of() : require) {
            for (String g : r.split(",")) if (!g.isBlank()) gates.add(g.strip());
        }
        for (String g : gates) {
            if (!GATES.contains(g)) throw ProblemException.invalid("require", "require must be among " + String.join(", ", GATES) + "; got '" + g + "'");
        }
        if (!gates.isEmpty()) {
            if (v.parentId == null) throw ProblemException.conflict("require", v.name + " has no parent to be compared with");
            String parent = find(v.parentId).name;
            List<String> refused = new ArrayList<>();
            if (gates.contains("evaluation")) {
                EvaluationGate.Decision d = EvaluationGate.decide(v.name, parent);
                if (!d.allowed()) refused.add("evaluation: " + d.reason());
            }
            if (gates.contains("head-to-head")) {
                PromotionGate.Decision d = PromotionGate.decide(HeadToHead.matches("include"), v.name, parent);
                if (!d.allowed()) refused.add("head-to-head: " + d.reason());
            }
            if (!refused.isEmpty()) throw ProblemException.conflict("require", String.join("; ", refused));
        }
        ModelVersion previous = ModelVersion.promoted().orElse(null);
        promoting.fire(new VersionPromoted(v, previous)); // a serving backend that cannot load the version refuses here
        v.promotedAt = OffsetDateTime.now();
        audit.record("model.promote", "version " + v.id, v.name);
        return view(v, v.id);
    }

    /** The promotion gates {@code require} may name. */
    static final List<String> GATES = List.of("evaluation", "head-to-head");

    private static ModelVersion find(long id) {
        ModelVersion v = ModelVersion.findById(id);
        if (v == null) throw ProblemException.notFound("id", "model version " + id + " does not exist");
        return v;
    }
}
