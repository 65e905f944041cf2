package org.prefloop.platform;

import jakarta.ws.rs.container.ContainerResponseContext;
import jakarta.ws.rs.core.MediaType;
import org.jboss.resteasy.reactive.server.ServerResponseFilter;

/**
 * Every page the app renders allows scripts and styles from the app only, and no framing: even
 * if some text slipped past the pages' text-only rendering, no script from a prompt or a model's
 * answer could run. (Swagger UI under /q keeps its own rules.)
 */
public class PageSecurityHeaders {
    static final String POLICY = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            + "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

    @ServerResponseFilter
    public void onPages(ContainerResponseContext response) {
        MediaType type = response.getMediaType();
        if (type != null && type.isCompatible(MediaType.TEXT_HTML_TYPE)) {
            response.getHeaders().putSingle("Content-Security-Policy", POLICY);
        }
    }
}
