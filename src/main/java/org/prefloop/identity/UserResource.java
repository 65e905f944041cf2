package org.prefloop.identity;

import io.quarkus.security.identity.SecurityIdentity;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.transaction.Transactional;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.PUT;
import jakarta.ws.rs.PathParam;
import org.prefloop.platform.AuditLog;
import java.time.OffsetDateTime;
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

    public record UserView(long id, String username, String role, boolean disabled) {
        static UserView of(User u) {
            return new UserView(u.id, u.username, u.role, u.disabled());
        }
    }

    public record RoleChange(String role) {
    }

    public record PasswordChange(String currentPassword, String password) {
    }

    @Inject
    AuditLog audit;

    @Inject
    Credentials credentials;

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
        audit.record("user.create", u.username, "role " + role);
        return Response.created(URI.create("/api/users/" + u.id)).entity(UserView.of(u)).build();
    }

    /** Disabling ends the user's sessions at once; no way in works for them until they are enabled again. */
    @POST
    @Path("/{username}/disable")
    @RolesAllowed(User.ADMIN)
    @Transactional
    public UserView disable(@PathParam("username") String username) {
        User u = find(username);
        if (u.username.equals(identity.getPrincipal().getName())) throw ProblemException.conflict("username", "you cannot disable yourself");
        if (!u.disabled()) u.disabledAt = OffsetDateTime.now();
        endSessions(u);
        audit.record("user.disable", u.username, null);
        return UserView.of(u);
    }

    @POST
    @Path("/{username}/enable")
    @RolesAllowed(User.ADMIN)
    @Transactional
    public UserView enable(@PathParam("username") String username) {
        User u = find(username);
        u.disabledAt = null;
        audit.record("user.enable", u.username, null);
        return UserView.of(u);
    }

    /** A new role takes effect at once: the user's sessions end (they sign in again with the new role). */
    @PUT
    @Path("/{username}/role")
    @Consumes(MediaType.APPLICATION_JSON)
    @RolesAllowed(User.ADMIN)
    @Transactional
    public UserView role(@PathParam("username") String username, RoleChange body) {
        if (body == null || body.role() == null || !(body.role().equals(User.ANNOTATOR) || body.role().equals(User.ADMIN))) {
            throw ProblemException.invalid("role", "role must be 'annotator' or 'admin'");
        }
        User u = find(username);
        if (u.username.equals(identity.getPrincipal().getName()) && !body.role().equals(User.ADMIN)) {
            throw ProblemException.conflict("role", "you cannot take the admin role from yourself");
        }
        String before = u.role;
        u.role = body.role();
        endSessions(u);
        audit.record("user.role", u.username, before + " -> " + u.role);
        return UserView.of(u);
    }

    /** An admin sets a new password for someone (who lost theirs); their sessions end. */
    @POST
    @Path("/{username}/password")
    @Consumes(MediaType.APPLICATION_JSON)
    @RolesAllowed(User.ADMIN)
    @Transactional
    public UserView resetPassword(@PathParam("username") String username, PasswordChange body) {
        if (body == null) throw ProblemException.badRequest(null, "a JSON body is required");
        checkPassword(body.password());
        User u = find(username);
        u.changePassword(body.password());
        endSessions(u);
        audit.record("user.password-reset", u.username, null);
        return UserView.of(u);
    }

    /** Anyone changes their own password, giving the current one; all their sessions end (this one too). */
    @POST
    @Path("/me/password")
    @Consumes(MediaType.APPLICATION_JSON)
    @RolesAllowed({User.ANNOTATOR, User.ADMIN})
    @Transactional
    public Response changeOwnPassword(PasswordChange body) {
        if (body == null) throw ProblemException.badRequest(null, "a JSON body is required");
        User u = find(identity.getPrincipal().getName());
        if (body.currentPassword() == null || !io.quarkus.elytron.security.common.BcryptUtil.matches(body.currentPassword(), u.password)) {
            throw ProblemException.invalid("currentPassword", "the current password is wrong");
        }
        checkPassword(body.password());
        u.changePassword(body.password());
        endSessions(u);
        return Response.noContent().build();
    }

    private static User find(String username) {
        return User.byName(username).orElseThrow(() -> ProblemException.notFound("username", "no user '" + username + "'"));
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

    /** Ends every session of the user and forgets their remembered Basic password, on every replica. */
    private void endSessions(User u) {
        SessionCookies.endAll(u.username);
        credentials.forget(u.username);
    }
}
