package org.prefloop.identity;

import io.quarkus.security.identity.SecurityIdentity;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.transaction.Transactional;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.prefloop.platform.ProblemException;

import java.net.URI;
import java.util.List;
import java.util.regex.Pattern;

/** Admins create annotators and other admins; everyone can ask who they are. */
@Path("/api/users")
@Produces(MediaType.APPLICATION_JSON)
public class UserResource {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9._-]{2,64}");

    @Inject
    SecurityIdentity identity;

    public record NewUser(String username, String password, String role) {
    }

    public record UserView(long id, String username, String role) {
        static UserView of(User u) {
            return new UserView(u.id, u.username, u.role);
        }
    }

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    @RolesAllowed(User.ADMIN)
    @Transactional
    public Response create(NewUser body) {
        if (body == null) throw ProblemException.badRequest(null, "a JSON body is required");
        if (body.username() == null || !NAME.matcher(body.username()).matches()) {
            throw ProblemException.invalid("username", "username must be 2-64 letters, digits, '.', '_' or '-'");
        }
        checkPassword(body.password());
        String role = body.role() == null ? User.ANNOTATOR : body.role();
        if (!role.equals(User.ANNOTATOR) && !role.equals(User.ADMIN)) {
            throw ProblemException.invalid("role", "role must be 'annotator' or 'admin'");
        }
        if (User.byName(body.username()).isPresent()) {
            throw ProblemException.conflict("username", "user '" + body.username() + "' exists");
        }
        User u = User.create(body.username(), body.password(), role);
        return Response.created(URI.create("/api/users/" + u.id)).entity(UserView.of(u)).build();
    }

    /** 8 characters at least; 72 bytes at most, bcrypt's limit (it would ignore the rest). */
    static void checkPassword(String password) {
        if (password == null || password.length() < 8) {
            throw ProblemException.invalid("password", "password must have at least 8 characters");
        }
        if (password.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > Credentials.MAX_PASSWORD_BYTES) {
            throw ProblemException.invalid("password", "password must have at most 72 bytes (bcrypt's limit)");
        }
    }

    @GET
    @RolesAllowed(User.ADMIN)
    public List<UserView> list() {
        return User.<User>listAll().stream().map(UserView::of).toList();
    }

    @GET
    @Path("/me")
    @RolesAllowed({User.ANNOTATOR, User.ADMIN})
    public UserView me() {
        return User.byName(identity.getPrincipal().getName()).map(UserView::of)
                .orElseThrow(() -> ProblemException.notFound(null, "no such user"));
    }
}
