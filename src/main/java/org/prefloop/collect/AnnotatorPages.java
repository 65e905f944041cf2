package org.prefloop.collect;

import io.quarkus.qute.Template;
import io.quarkus.qute.TemplateInstance;
import io.quarkus.security.identity.SecurityIdentity;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import org.prefloop.identity.Page;
import org.prefloop.identity.User;
import org.prefloop.platform.Settings;

/** The annotator's pages: the workspace, their own history, and the guidelines. */
@Path("/")
@Produces(MediaType.TEXT_HTML)
@RolesAllowed({User.ANNOTATOR, User.ADMIN})
public class AnnotatorPages {

    @Inject
    SecurityIdentity identity;

    @Inject
    Template annotate;

    @Inject
    Settings settings;

    @Inject
    Template history;

    @Inject
    Criteria criteria;

    @Inject
    Template guidelines;

    @GET
    @Path("annotate")
    public TemplateInstance workspace() {
        return annotate.data("page", Page.of(identity, "Annotate", "annotate", "annotate")).data("undoSeconds", settings.annotation().undoSeconds())
                .data("criteria", criteria.shown());
    }

    @GET
    @Path("annotate/history")
    public TemplateInstance myHistory() {
        return history.data("page", Page.of(identity, "My history", "history", "history"));
    }

    @GET
    @Path("guidelines")
    public TemplateInstance guidelines() {
        return guidelines.data("page", Page.of(identity, "Guidelines", "guidelines", null));
    }
}
