package org.prefloop.identity;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.security.AuthenticationFailedException;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Singleton;
import org.prefloop.platform.Problem;

import java.time.Duration;
import java.util.Map;

/**
 * A name locked by failed sign-ins, refused through HTTP Basic: 429 with {@code Retry-After}, as the
 * sign-in form answers, rather than the 401 challenge any other failed Basic attempt gets, so a
 * script learns to wait instead of retrying (and counting more failures).
 */
@Singleton
public class SignInLocked {
    private static final String RETRY_AFTER = "prefloop.retry-after-seconds";

    /** What {@link BasicIdentityProvider} throws for a locked name (the Quarkus exception is final: an attribute marks it). */
    static AuthenticationFailedException refusal(Duration retryAfter) {
        long seconds = Math.max(1, (retryAfter.toMillis() + 999) / 1000);
        return new AuthenticationFailedException("too many failed sign-ins", Map.of(RETRY_AFTER, seconds));
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    void routes(@Observes Router router) {
        // proactive authentication fails the route before any REST exception mapper could see it
        router.route().order(Integer.MIN_VALUE).failureHandler(ctx -> {
            Long seconds = ctx.failure() instanceof AuthenticationFailedException refused ? refused.getAttribute(RETRY_AFTER) : null;
            if (seconds == null || ctx.response().headWritten()) {
                ctx.next();
                return;
            }
            Problem problem = new Problem("about:blank", "Too Many Requests", 429,
                    "too many failed sign-ins for this name; try again in " + seconds + " s", null);
            HttpServerResponse response = ctx.response().setStatusCode(429)
                    .putHeader("Content-Type", Problem.MEDIA_TYPE)
                    .putHeader("Retry-After", Long.toString(seconds));
            try {
                response.end(JSON.writeValueAsString(problem));
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                response.end();
            }
        });
    }
}
