package org.prefloop.identity;

import java.time.Instant;

/**
 * A signed-in browser session, carried in the {@code prefloop_session} cookie. {@code csrf} is
 * the token every state-changing request from that browser must repeat in the
 * {@code X-CSRF-Token} header: a page of another site can make the browser send the cookie,
 * but cannot read the token. {@code id} names the session's row in the store.
 */
public record Session(String username, String role, Instant expires, String csrf, String id) {
    public static final String COOKIE = "prefloop_session";
    public static final String CSRF_HEADER = "X-CSRF-Token";
    /** The identity attribute under which a session-authenticated request finds its session. */
    public static final String ATTRIBUTE = "prefloop.session";

    public boolean admin() {
        return User.ADMIN.equals(role);
    }
}
