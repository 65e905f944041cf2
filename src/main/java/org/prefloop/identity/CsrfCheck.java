package org.prefloop.identity;

import io.quarkus.security.identity.SecurityIdentity;
import jakarta.inject.Inject;
import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.core.Response;
import org.jboss.resteasy.reactive.server.ServerRequestFilter;
import org.prefloop.platform.ProblemMappers;

import java.security.MessageDigest;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.Set;

/**
 * A request that a session cookie authenticated, and that changes something, must repeat the
 * session's CSRF token in {@code X-CSRF-Token}. Basic and Bearer requests carry their own
 * credentials, which a foreign page cannot make a browser send, and need no token.
 */
public class CsrfCheck {
    private static final Set<String> SAFE = Set.of("GET", "HEAD", "OPTIONS");

    @Inject
    SecurityIdentity identity;

    @ServerRequestFilter
    public Optional<Response> requireToken(ContainerRequestContext request) {
        // The sign-in form carries its own token (a signed-in person may sign in again as someone else).
        if (SAFE.contains(request.getMethod()) || request.getUriInfo().getPath().equals("/login")) return Optional.empty();
        Session session = identity.getAttribute(Session.ATTRIBUTE);
        if (session == null) return Optional.empty();
        String sent = request.getHeaderString(Session.CSRF_HEADER);
        if (sent != null && MessageDigest.isEqual(sent.getBytes(StandardCharsets.UTF_8), session.csrf().getBytes(StandardCharsets.UTF_8))) {
            return Optional.empty();
        }
        return Optional.of(ProblemMappers.response(403, Session.CSRF_HEADER,
                "this request needs the page's CSRF token in the " + Session.CSRF_HEADER + " header"));
    }
}
