package org.prefloop.identity;

import io.quarkus.security.identity.IdentityProviderManager;
import io.quarkus.security.identity.SecurityIdentity;
import io.quarkus.security.runtime.QuarkusPrincipal;
import io.quarkus.security.runtime.QuarkusSecurityIdentity;
import io.quarkus.vertx.http.runtime.security.ChallengeData;
import io.quarkus.vertx.http.runtime.security.HttpAuthenticationMechanism;
import io.smallrye.mutiny.Uni;
import io.vertx.core.http.Cookie;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;

/**
 * Signs in browsers by their session cookie; API clients keep using HTTP Basic (the next
 * mechanism). When nobody is signed in, a page request is sent to the sign-in page, a script's
 * request ({@code X-Requested-With}) gets a bare 401 (no Basic prompt), and anything else gets
 * Basic's challenge.
 */
@ApplicationScoped
public class SessionAuthentication implements HttpAuthenticationMechanism {

    @Inject
    SessionCookies cookies;

    @Override
    public Uni<SecurityIdentity> authenticate(RoutingContext context, IdentityProviderManager identityProviderManager) {
        Cookie cookie = context.request().getCookie(Session.COOKIE);
        if (cookie == null) return Uni.createFrom().nullItem();
        String value = cookie.getValue();
        // the session is checked in the store: off the event loop
        return Uni.createFrom().item(() -> cookies.read(value))
                .runSubscriptionOn(io.smallrye.mutiny.infrastructure.Infrastructure.getDefaultWorkerPool())
                .map(found -> found.<SecurityIdentity>map(s -> QuarkusSecurityIdentity.builder()
                        .setPrincipal(new QuarkusPrincipal(s.username()))
                        .addRole(s.role())
                        .addAttribute(Session.ATTRIBUTE, s)
                        .build()).orElse(null));
    }

    @Override
    public Uni<ChallengeData> getChallenge(RoutingContext context) {
        if (context.request().getHeader("X-Requested-With") != null) {
            return Uni.createFrom().item(new ChallengeData(401));
        }
        String accept = context.request().getHeader("Accept");
        if (context.request().method() == HttpMethod.GET && accept != null && accept.contains("text/html")) {
            String next = URLEncoder.encode(context.request().uri(), StandardCharsets.UTF_8);
            return Uni.createFrom().item(new ChallengeData(302, "Location", "/login?next=" + next));
        }
        return Uni.createFrom().nullItem();
    }

    /** Before Basic (2000), so that Basic's challenge is only the fallback. */
    @Override
    public int getPriority() {
        return 3000;
    }
}
