package org.prefloop.identity;

import io.quarkus.security.AuthenticationFailedException;
import io.quarkus.security.identity.AuthenticationRequestContext;
import io.quarkus.security.identity.IdentityProvider;
import io.quarkus.security.identity.SecurityIdentity;
import io.quarkus.security.identity.request.UsernamePasswordAuthenticationRequest;
import io.quarkus.security.runtime.QuarkusPrincipal;
import io.quarkus.security.runtime.QuarkusSecurityIdentity;
import io.quarkus.vertx.http.runtime.security.HttpSecurityUtils;
import io.smallrye.mutiny.Uni;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

/**
 * HTTP Basic goes through {@link Credentials} like the sign-in form: the same throttle and lock
 * (shared through the store), the same constant work for unknown names, the same 72-byte rule.
 * Its priority puts it before the JPA provider the {@code @UserDefinition} entity brings, which is
 * then never asked.
 */
@ApplicationScoped
public class BasicIdentityProvider implements IdentityProvider<UsernamePasswordAuthenticationRequest> {
    @Inject
    Credentials credentials;

    @Override
    public Class<UsernamePasswordAuthenticationRequest> getRequestType() {
        return UsernamePasswordAuthenticationRequest.class;
    }

    @Override
    public int priority() {
        return Integer.MAX_VALUE;
    }

    @Override
    public Uni<SecurityIdentity> authenticate(UsernamePasswordAuthenticationRequest request, AuthenticationRequestContext context) {
        RoutingContext http = HttpSecurityUtils.getRoutingContextAttribute(request);
        String address = http == null || http.request().remoteAddress() == null ? "unknown" : http.request().remoteAddress().host();
        String username = request.getUsername();
        String password = new String(request.getPassword().getPassword());
        return context.runBlocking(() -> switch (credentials.check(username, password, address)) {
            case Credentials.Ok ok -> QuarkusSecurityIdentity.builder().setPrincipal(new QuarkusPrincipal(ok.user().username))
                    .addRole(ok.user().role).build();
            case Credentials.Locked locked -> throw SignInLocked.refusal(locked.retryAfter());
            case Credentials.Refused refused -> throw new AuthenticationFailedException("wrong user name or password");
        });
    }
}
