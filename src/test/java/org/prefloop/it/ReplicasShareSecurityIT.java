package org.prefloop.it;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.testing.ServiceProcess;
import org.prefloop.testing.ServiceProcess.SignedIn;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two web replicas behind one load balancer, sharing one store as the Deployments share PostgreSQL:
 * a name locked on one is locked on the other, for the form and for HTTP Basic; a session ended on
 * one (sign-out, a disabled user, a changed password) is refused by the other at once.
 */
class ReplicasShareSecurityIT {

    @Test
    void lockoutsAndSessionEndsReachEveryReplica(@TempDir Path data) throws Exception {
        String store = "jdbc:h2:file:" + data.resolve("store/prefloop") + ";MODE=PostgreSQL;DATABASE_TO_LOWER=TRUE;DEFAULT_NULL_ORDERING=HIGH;WRITE_DELAY=0;AUTO_SERVER=TRUE";
        Map<String, String> shared = Map.of("PREFLOOP_SESSION_KEY", "a-session-key-both-replicas-share-0123456789",
                "PREFLOOP_SECURE_COOKIE", "false", "QUARKUS_DATASOURCE_JDBC_URL", store);
        try (ServiceProcess a = new ServiceProcess(Files.createDirectories(data.resolve("a")), shared).start();
             ServiceProcess b = new ServiceProcess(Files.createDirectories(data.resolve("b")), withRoles(shared, "web")).start()) {
            createAnnotator(a, "locked-out");
            createAnnotator(a, "signed-in");

            // five wrong guesses through the form on replica a lock the name on replica b, Basic and form alike
            for (int i = 0; i < 5; i++) assertEquals(401, a.postSignIn("locked-out", "guess-" + i).statusCode());
            HttpResponse<String> basic = b.getAs("locked-out", "password-locked-out", "/api/users/me");
            assertEquals(429, basic.statusCode(), basic.body());
            assertTrue(Integer.parseInt(basic.headers().firstValue("Retry-After").orElseThrow()) > 0);
            assertEquals(429, b.postSignIn("locked-out", "password-locked-out").statusCode());

            // a session from replica a works on b; signing out on a ends it on b
            SignedIn session = a.signIn("signed-in", "password-signed-in");
            assertEquals(200, b.send(session, "GET", "/api/users/me").statusCode());
            assertEquals(204, a.send(session, "POST", "/logout").statusCode());
            assertEquals(401, b.send(session, "GET", "/api/users/me").statusCode());

            // disabling the user on b ends the session from a, on a
            SignedIn again = a.signIn("signed-in", "password-signed-in");
            assertEquals(200, a.send(again, "GET", "/api/users/me").statusCode());
            assertEquals(200, b.postJson("/api/users/signed-in/disable", "").statusCode());
            assertEquals(401, a.send(again, "GET", "/api/users/me").statusCode());
            assertEquals(401, a.getAs("signed-in", "password-signed-in", "/api/users/me").statusCode());

            // a password reset on a ends the session on b; the new password works on both
            assertEquals(200, a.postJson("/api/users/signed-in/enable", "").statusCode());
            SignedIn third = b.signIn("signed-in", "password-signed-in");
            assertEquals(200, a.postJson("/api/users/signed-in/password", "{\"password\":\"a-new-password-123\"}").statusCode());
            assertEquals(401, b.send(third, "GET", "/api/users/me").statusCode());
            assertEquals(200, b.getAs("signed-in", "a-new-password-123", "/api/users/me").statusCode());
            assertEquals(401, a.getAs("signed-in", "password-signed-in", "/api/users/me").statusCode());
        }
    }

    private static void createAnnotator(ServiceProcess service, String name) throws Exception {
        HttpResponse<String> created = service.postJson("/api/users",
                "{\"username\":\"" + name + "\",\"password\":\"password-" + name + "\",\"role\":\"annotator\"}");
        assertEquals(201, created.statusCode(), created.body());
    }

    private static Map<String, String> withRoles(Map<String, String> env, String roles) {
        Map<String, String> copy = new java.util.HashMap<>(env);
        copy.put("PREFLOOP_ROLES", roles);
        return copy;
    }
}
