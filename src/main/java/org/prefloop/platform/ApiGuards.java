package org.prefloop.platform;

import jakarta.inject.Singleton;
import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.container.ContainerResponseContext;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.jboss.resteasy.reactive.server.ServerRequestFilter;
import org.jboss.resteasy.reactive.server.ServerResponseFilter;

import java.util.Optional;
import java.util.Set;

/**
 * Two rules for every {@code /api} request. A body is refused before it is read when its length is larger
 * than {@code prefloop.api.max-body-size}, and one without a length (chunked) is cut off there (the
 * bulk imports stream and keep their own limits). And an error that
 * left the JAX-RS layer without a body (a query parameter that is not a number, say) still answers
 * {@code application/problem+json}.
 */
@Singleton
public class ApiGuards {
    /** The streaming imports: they read line by line and limit each line and the whole themselves. */
    static final Set<String> STREAMING = Set.of("/api/comparisons/import", "/api/datasets/upload");

    private final long maxBody;

    ApiGuards(Settings settings) {
        this.maxBody = settings.api().maxBodySize().asLongValue();
    }

    @ServerRequestFilter(preMatching = true)
    public Optional<Response> bounded(ContainerRequestContext request) {
        String path = request.getUriInfo().getPath();
        if (!path.startsWith("/api/") || STREAMING.contains(path)) return Optional.empty();
        String length = request.getHeaderString(HttpHeaders.CONTENT_LENGTH);
        if (length == null) {
            // no length (chunked, or HTTP/2 without one): counted as it is read, refused past the limit
            if (request.hasEntity()) request.setEntityStream(new Bounded(request.getEntityStream(), maxBody));
            return Optional.empty();
        }
        long n;
        try {
            n = Long.parseLong(length.trim());
        } catch (NumberFormatException e) {
            return Optional.of(ProblemMappers.response(400, null, "Content-Length is not a number"));
        }
        if (n > maxBody) {
            return Optional.of(ProblemMappers.response(413, null, "the body is larger than " + maxBody + " bytes (prefloop.api.max-body-size)"));
        }
        return Optional.empty();
    }

    /** A body stream that fails with a 413 once more than {@code limit} bytes came through. */
    static final class Bounded extends java.io.FilterInputStream {
        private final long limit;
        private long read;

        Bounded(java.io.InputStream in, long limit) {
            super(in);
            this.limit = limit;
        }

        @Override
        public int read() throws java.io.IOException {
            int b = super.read();
            if (b >= 0) count(1);
            return b;
        }

        @Override
        public int read(byte[] buf, int off, int len) throws java.io.IOException {
            int n = super.read(buf, off, len);
            if (n > 0) count(n);
            return n;
        }

        private void count(int n) {
            read += n;
            if (read > limit) throw ProblemException.tooLarge("the body is larger than " + limit + " bytes (prefloop.api.max-body-size)");
        }
    }

    @ServerResponseFilter
    public void problemBodies(ContainerRequestContext request, ContainerResponseContext response) {
        int status = response.getStatus();
        if (status < 400 || !request.getUriInfo().getPath().startsWith("/api/") || response.hasEntity()) return;
        response.setEntity(new Problem("about:blank", ProblemMappers.title(status), status, detail(status), null),
                null, MediaType.valueOf(Problem.MEDIA_TYPE));
    }

    private static String detail(int status) {
        return switch (status) {
            case 400 -> "the request is malformed: check its parameters and body";
            case 401 -> "sign in, or send HTTP Basic credentials or an API key";
            case 404 -> "no such resource";
            case 405 -> "this method is not allowed here";
            case 406 -> "no acceptable representation";
            case 415 -> "this media type is not accepted here";
            default -> Response.Status.fromStatusCode(status) == null ? "error" : Response.Status.fromStatusCode(status).getReasonPhrase();
        };
    }
}
