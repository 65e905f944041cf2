package org.prefloop.console;

import io.quarkus.qute.Engine;
import io.quarkus.qute.TemplateInstance;
import io.quarkus.security.identity.SecurityIdentity;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import org.prefloop.identity.Page;
import org.prefloop.identity.User;

import java.util.Map;

/**
 * The alignment team's console. Each page is a server-rendered frame (templates/console/NAME.html);
 * its script under /assets (NAME.js) fills it from the JSON API the team can also call directly,
 * and draws the charts as SVG.
 */
@Path("/console")
@Produces(MediaType.TEXT_HTML)
@RolesAllowed(User.ADMIN)
public class ConsolePages {
    private static final Map<String, String> TITLES = Map.of("overview", "Overview", "quality", "Quality",
            "disagreements", "Disagreements", "datasets", "Datasets", "runs", "Runs", "models", "Models");

    @Inject
    SecurityIdentity identity;

    @Inject
    Engine templates;

    @GET
    public TemplateInstance overview() {
        return page("overview");
    }

    @GET
    @Path("{name: quality|disagreements|datasets|runs|models}")
    public TemplateInstance page(@PathParam("name") String name) {
        return templates.getTemplate("console/" + name).data("page", Page.of(identity, TITLES.get(name), name, name));
    }

    @GET
    @Path("runs/{id}")
    public TemplateInstance run(@PathParam("id") long id) {
        return templates.getTemplate("console/run").data("page", Page.of(identity, "Run " + id, "runs", "run")).data("runId", id);
    }
}
