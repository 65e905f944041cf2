package org.prefloop.serve;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.security.identity.SecurityIdentity;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
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

import java.net.URI;
import java.time.OffsetDateTime;
import java.util.List;

/**
 * Admins create and revoke the API keys apps use for /v1. A new key is shown once, in the
 * answer that creates it.
 */
@Path("/api/keys")
@Produces(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class ApiKeyResource {

    @Inject
    SecurityIdentity identity;

    @Inject
    ApiKeys keys;

    @Inject
    AuditLog audit;

    public record NewKey(String name) {
    }

    public record KeyView(long id, String name, String prefix, String createdBy, OffsetDateTime createdAt, OffsetDateTime revokedAt) {
        static KeyView of(ApiKey k) {
            return new KeyView(k.id, k.name, k.prefix, k.createdBy, k.createdAt, k.revokedAt);
        }
    }

    public record CreatedKey(long id, String name, String key) {
    }

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    public Response create(NewKey body) {
        if (body == null || body.name() == null || body.name().isBlank() || body.name().length() > 200) {
            throw ProblemException.invalid("name", "a key needs a name of 1-200 characters (who or what uses it)");
        }
        String secret = ApiKey.newSecret();
        String creator = identity.getPrincipal().getName();
        ApiKey k = QuarkusTransaction.requiringNew().call(() -> {
            ApiKey stored = ApiKey.store(body.name(), secret, creator);
            audit.record("key.create", "key " + stored.id, stored.name + " (" + stored.prefix + "…)");
            return stored;
        });
        keys.refresh();
        return Response.created(URI.create("/api/keys/" + k.id)).entity(new CreatedKey(k.id, k.name, secret)).build();
    }

    @GET
    public List<KeyView> list() {
        return ApiKey.<ApiKey>listAll().stream().map(KeyView::of).toList();
    }

    @DELETE
    @Path("/{id}")
    public KeyView revoke(@PathParam("id") long id) {
        KeyView revoked = QuarkusTransaction.requiringNew().call(() -> {
            ApiKey k = ApiKey.findById(id);
            if (k == null) throw ProblemException.notFound("id", "API key " + id + " does not exist");
            if (k.revokedAt == null) {
                k.revokedAt = OffsetDateTime.now();
                audit.record("key.revoke", "key " + k.id, k.name);
            }
            return KeyView.of(k);
        });
        keys.refresh();
        return revoked;
    }
}
