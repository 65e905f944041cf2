package org.prefloop.console;

import io.quarkus.qute.Location;
import io.quarkus.qute.Template;
import io.quarkus.qute.TemplateInstance;
import io.quarkus.security.identity.SecurityIdentity;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import org.prefloop.identity.User;
import org.prefloop.platform.Page;

/**
 * The alignment team's console. Each page is a server-rendered frame; its script under /assets
 * fills it from the JSON API the team can also call directly, and draws the charts as SVG.
 */
@Path("/console")
@Produces(MediaType.TEXT_HTML)
@RolesAllowed(User.ADMIN)
public class ConsolePages {

    @Inject
    SecurityIdentity identity;

    @Inject
    @Location("console/overview.html")
    Template overview;

    @Inject
    @Location("console/quality.html")
    Template quality;

    @Inject
    @Location("console/datasets.html")
    Template datasets;

    @Inject
    @Location("console/runs.html")
    Template runs;

    @Inject
    @Location("console/run.html")
    Template run;

    @Inject
    @Location("console/models.html")
    Template models;

    @GET
    public TemplateInstance overview() {
        return overview.data("page", page("Overview", "overview"));
    }

    @GET
    @Path("quality")
    public TemplateInstance quality() {
        return quality.data("page", page("Quality", "quality"));
    }

    @GET
    @Path("datasets")
    public TemplateInstance datasets() {
        return datasets.data("page", page("Datasets", "datasets"));
    }

    @GET
    @Path("runs")
    public TemplateInstance runs() {
        return runs.data("page", page("Runs", "runs"));
    }

    @GET
    @Path("runs/{id}")
    public TemplateInstance run(@PathParam("id") long id) {
        return run.data("page", page("Run " + id, "runs").withScript("run")).data("runId", id);
    }

    @GET
    @Path("models")
    public TemplateInstance models() {
        return models.data("page", page("Models", "models"));
    }

    private Page page(String title, String active) {
        return Page.of(identity, title, active, active);
    }
}
