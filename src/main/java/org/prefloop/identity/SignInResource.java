package org.prefloop.identity;

import io.quarkus.qute.Template;
import io.quarkus.security.identity.SecurityIdentity;
import io.vertx.core.http.HttpServerRequest;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.CookieParam;
import jakarta.ws.rs.FormParam;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;

import java.net.URI;
import java.time.Duration;
import java.util.Optional;

/**
 * The browser's way in: a sign-in form (with its own CSRF token, double-submitted as a cookie
 * and a form field), sign-out, and {@code /}, which sends each role to its home page.
 */
@Path("/")
public class SignInResource {
    static final String FORM_COOKIE = "prefloop_signin";

    @Inject
    Template login;

    @Inject
    SessionCookies cookies;

    @Inject
    Credentials credentials;

    @Inject
    SecurityIdentity identity;

    @GET
    @RolesAllowed({User.ANNOTATOR, User.ADMIN})
    public Response home() {
        return seeOther(identity.hasRole(User.ADMIN) ? "/console" : "/annotate");
    }

    @GET
    @Path("login")
    @Produces(MediaType.TEXT_HTML)
    public Response form(@QueryParam("next") String next) {
        return form(200, next, null);
    }

    @POST
    @Path("login")
    @Produces(MediaType.TEXT_HTML)
    public Response signIn(@FormParam("username") String username, @FormParam("password") String password,
                           @FormParam("csrf") String csrf, @FormParam("next") String next,
                           @CookieParam(FORM_COOKIE) String csrfCookie, @Context HttpServerRequest request) {
        if (csrf == null || !csrf.equals(csrfCookie)) {
            return form(403, next, "This sign-in form has expired. Please try again.");
        }
        if (username == null || username.isBlank() || password == null) {
            return form(400, next, "Enter your user name and password.");
        }
        String address = request.remoteAddress() == null ? "unknown" : request.remoteAddress().host();
        Credentials.Result result = credentials.check(username, password, address);
        if (result instanceof Credentials.Locked locked) {
            long seconds = Math.max(1, locked.retryAfter().toSeconds());
            return Response.fromResponse(form(429, next, "Too many failed sign-ins. Try again in " + minutes(seconds) + "."))
                    .header("Retry-After", seconds).build();
        }
        if (!(result instanceof Credentials.Ok ok)) return form(401, next, "Wrong user name or password.");
        Optional<User> user = Optional.of(ok.user());
        SessionCookies.Issued issued = cookies.issue(user.get().username, user.get().role);
        String home = User.ADMIN.equals(issued.session().role()) ? "/console" : "/annotate";
        return Response.seeOther(URI.create(safeNext(next, home)))
                .header("Set-Cookie", issued.setCookie())
                .header("Set-Cookie", FORM_COOKIE + "=; Path=/login; Max-Age=0").build();
    }

    /** Sign-out changes state, so it is a POST with the session's CSRF token (checked by {@link CsrfCheck}). */
    @POST
    @Path("logout")
    public Response signOut() {
        if (identity.getAttribute(Session.ATTRIBUTE) instanceof Session s) cookies.end(s);
        return Response.noContent().header("Set-Cookie", cookies.cleared()).build();
    }

    private Response form(int status, String next, String error) {
        String token = SessionCookies.randomToken();
        String html = login.data("csrf", token).data("next", safeNext(next, "")).data("error", error).render();
        return Response.status(status).type(MediaType.TEXT_HTML_TYPE).entity(html)
                .header("Set-Cookie", FORM_COOKIE + "=" + token + "; Path=/login; HttpOnly; SameSite=Strict"
                        + (cookies.secure() ? "; Secure" : "")).build();
    }

    /**
     * Only a path on this site: never a full URL or a protocol-relative one (an open redirect), and
     * only characters a URI path and query may hold as they are (no space, tab, quote, angle
     * bracket, backslash or line break: nothing that could end a header or a log line).
     */
    static String safeNext(String next, String fallback) {
        if (next == null || !SAFE_NEXT.matcher(next).matches() || next.startsWith("//")) return fallback;
        try {
            URI.create(next);
            return next;
        } catch (IllegalArgumentException e) {
            return fallback;
        }
    }

    private static final java.util.regex.Pattern SAFE_NEXT = java.util.regex.Pattern.compile("/[A-Za-z0-9\\-._~/?&=%+,;:@!$()*]{0,500}");

    private static String minutes(long seconds) {
        return seconds < 90 ? seconds + " seconds" : (seconds + 59) / 60 + " minutes";
    }

    private static Response seeOther(String path) {
        return Response.seeOther(URI.create(path)).build();
    }
}
