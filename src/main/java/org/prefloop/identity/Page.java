package org.prefloop.identity;

import io.quarkus.security.identity.SecurityIdentity;

/**
 * What the shared layout needs to draw a page: its title, which navigation entry is current,
 * who is signed in, the CSRF token for the page's scripts, and the script (under /assets) that
 * brings the page to life.
 */
public record Page(String title, String active, String user, String role, boolean admin, String csrf, String script) {

    public static Page of(SecurityIdentity identity, String title, String active, String script) {
        Session session = identity.getAttribute(Session.ATTRIBUTE);
        boolean admin = identity.hasRole(User.ADMIN);
        return new Page(title, active, identity.getPrincipal().getName(), admin ? User.ADMIN : User.ANNOTATOR, admin,
                session == null ? "" : session.csrf(), script);
    }
}
