package org.prefloop.serve;

import io.quarkus.panache.common.Sort;
import jakarta.annotation.security.PermitAll;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import org.prefloop.registry.ModelVersion;

import java.util.ArrayList;
import java.util.List;

/** OpenAI's {@code GET /v1/models}: every registered version by name, plus the alias of the promoted one. */
@Path("/v1/models")
@Produces(MediaType.APPLICATION_JSON)
@PermitAll
public class ModelsResource {
    /** The model name that always means "the promoted version". */
    public static final String PROMOTED_ALIAS = "prefloop";

    public record ModelEntry(String id, String object, long created, String owned_by) {
    }

    public record ModelList(String object, List<ModelEntry> data) {
    }

    @GET
    public ModelList list() {
        List<ModelEntry> data = new ArrayList<>();
        ModelVersion.promoted().ifPresent(p -> data.add(entry(PROMOTED_ALIAS, p)));
        for (ModelVersion v : ModelVersion.<ModelVersion>listAll(Sort.ascending("id"))) data.add(entry(v.name, v));
        return new ModelList("list", data);
    }

    private static ModelEntry entry(String id, ModelVersion v) {
        return new ModelEntry(id, "model", v.createdAt == null ? 0 : v.createdAt.toEpochSecond(), "prefloop");
    }
}
