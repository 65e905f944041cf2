package org.prefloop.serve;

import io.quarkus.security.identity.SecurityIdentity;
import jakarta.inject.Inject;
import org.prefloop.identity.Session;
import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.jboss.resteasy.reactive.server.ServerRequestFilter;

import java.util.Map;
import java.util.Optional;

/**
 * Every /v1 request needs {@code Authorization: Bearer <API key>}; refusals come in OpenAI's error
 * shape. The one exception is an admin signed in to the console, whose playground talks to /v1
 * with the session cookie (and its CSRF token).
 */
public class BearerKeyFilter {

    @Inject
    ApiKeys keys;

    @Inject
    SecurityIdentity identity;

    @ServerRequestFilter(preMatching = true)
    public Optional<Response> requireKey(ContainerRequestContext request) {
        String path = request.getUriInfo().getPath();
        if (!path.startsWith("/v1/") && !path.equals("/v1")) return Optional.empty();
        Session session = identity.getAttribute(Session.ATTRIBUTE);
        if (session != null && session.admin()) return Optional.empty();
        String header = request.getHeaderString(HttpHeaders.AUTHORIZATION);
        String secret = header != null && header.regionMatches(true, 0, "Bearer ", 0, 7) ? header.substring(7).trim() : null;
        if (keys.valid(secret)) return Optional.empty();
        String message = secret == null ? "Missing API key: send 'Authorization: Bearer <key>'." : "Invalid or revoked API key.";
        return Optional.of(Response.status(401).type(MediaType.APPLICATION_JSON)
                .entity(OpenAiError.of(message, "invalid_request_error", "invalid_api_key")).build());
    }

    /** OpenAI's error body, which OpenAI clients parse: {@code {"error": {"message", "type", "param", "code"}}}. */
    public record OpenAiError(Map<String, Object> error) {
        public static OpenAiError of(String message, String type, String code) {
            return of(message, type, null, code);
        }

        /** param and code may be null, and are then sent as JSON null, as OpenAI does. */
        public static OpenAiError of(String message, String type, String param, String code) {
            Map<String, Object> e = new java.util.LinkedHashMap<>();
            e.put("message", message);
            e.put("type", type);
            e.put("param", param);
            e.put("code", code);
            return new OpenAiError(e);
        }
    }
}
