package org.prefloop.identity;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.RestAssured;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;
import org.prefloop.testing.Browser;

import java.util.Map;
import java.util.UUID;

import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.not;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Browser sign-in: the form, the session cookie, CSRF, roles, throttling, sign-out. */
@QuarkusTest
class SignInTest {

    @Test
    void aSignedOutPageVisitIsSentToTheFormAndScriptsGetABare401() {
        RestAssured.given().redirects().follow(false).accept("text/html").get("/console")
                .then().statusCode(302).header("Location", "/login?next=%2Fconsole");
        RestAssured.given().header("X-Requested-With", "prefloop").get("/api/tasks/stats")
                .then().statusCode(401).header("WWW-Authenticate", (String) null);
        RestAssured.given().get("/api/tasks/stats").then().statusCode(401).header("WWW-Authenticate", containsString("basic"));
    }

    @Test
    void signingInSetsASecureSessionCookieAndSendsEachRoleHome() {
        String annotator = Api.newAnnotator();
        Response r = Browser.postSignIn(annotator, "password-" + annotator, null);
        assertEquals(303, r.statusCode());
        assertTrue(r.header("Location").endsWith("/annotate"), r.header("Location"));
        String setCookie = r.headers().getValues("Set-Cookie").stream().filter(c -> c.startsWith("prefloop_session=")).findFirst().orElseThrow();
        assertTrue(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict"), setCookie);

        Response admin = Browser.postSignIn("admin", Api.adminPassword(), "/console/runs");
        assertTrue(admin.header("Location").endsWith("/console/runs"), "back to the page asked for");
        Response evil = Browser.postSignIn("admin", Api.adminPassword(), "//evil.example/x");
        assertTrue(evil.header("Location").endsWith("/console") && !evil.header("Location").contains("evil"), "no open redirect");
    }

    @Test
    void theFormRefusesAMissingCsrfTokenAndWrongPasswords() {
        RestAssured.given().redirects().follow(false).formParam("username", "admin").formParam("password", Api.adminPassword())
                .formParam("csrf", "forged").post("/login").then().statusCode(403).body(containsString("expired"));
        String annotator = Api.newAnnotator();
        assertEquals(401, Browser.postSignIn(annotator, "wrong-password", null).statusCode());
    }

    @Test
    void repeatedFailuresLockTheNameForAWhileEvenForTheRightPassword() {
        String annotator = Api.newAnnotator();
        for (int i = 0; i < 5; i++) assertEquals(401, Browser.postSignIn(annotator, "guess-" + i, null).statusCode());
        Response locked = Browser.postSignIn(annotator, "password-" + annotator, null);
        assertEquals(429, locked.statusCode());
        assertTrue(Integer.parseInt(locked.header("Retry-After")) > 0);
        assertTrue(locked.asString().contains("Too many failed sign-ins"));
        // another person is not locked out by it
        String other = Api.newAnnotator();
        assertEquals(303, Browser.postSignIn(other, "password-" + other, null).statusCode());
    }

    @Test
    void aSessionNeedsItsCsrfTokenToChangeAnything() {
        String annotator = Api.newAnnotator();
        long comparison = Api.newComparison("2 + 2?", "4", "5");
        Browser me = Browser.signIn(annotator, "password-" + annotator);
        Map<String, Object> judgment = Map.of("eventId", UUID.randomUUID().toString(), "comparisonId", comparison, "choice", "A");
        me.page().contentType(ContentType.JSON).body(judgment).post("/api/preferences")
                .then().statusCode(403).contentType("application/problem+json").body("detail", containsString("CSRF"));
        me.page().contentType(ContentType.JSON).header("X-CSRF-Token", "not-the-token").body(judgment).post("/api/preferences")
                .then().statusCode(403);
        me.script().contentType(ContentType.JSON).body(judgment).post("/api/preferences").then().statusCode(202);
        me.page().get("/api/tasks/stats").then().statusCode(200);
    }

    @Test
    void annotatorsSeeAnnotationPagesOnlyAndAdminsSeeTheConsole() {
        String annotator = Api.newAnnotator();
        Browser me = Browser.signIn(annotator, "password-" + annotator);
        me.page().accept("text/html").get("/annotate").then().statusCode(200).body(containsString("Which response is better?"))
                .body(not(containsString("/console/runs")))
                .header("Content-Security-Policy", containsString("script-src 'self'"));
        me.page().accept("text/html").get("/console").then().statusCode(403).body(containsString("Not for your role"));
        me.script().get("/api/overview").then().statusCode(403).contentType("application/problem+json");
        Browser admin = Browser.signIn("admin", Api.adminPassword());
        for (String page : new String[]{"/console", "/console/quality", "/console/datasets", "/console/runs", "/console/runs/1", "/console/models"}) {
            admin.page().accept("text/html").get(page).then().statusCode(200).body(containsString("/assets/"));
        }
        admin.script().get("/api/overview").then().statusCode(200).body("queue.overlap", equalTo(2));
    }

    @Test
    void someoneSignedInCanSignInAgainAsSomeoneElse() {
        String first = Api.newAnnotator(), second = Api.newAnnotator();
        Browser me = Browser.signIn(first, "password-" + first);
        assertEquals(303, me.postSignInAgain(second, "password-" + second).statusCode());
    }

    @Test
    void aTamperedCookieIsNoSessionAndSignOutEndsIt() {
        String annotator = Api.newAnnotator();
        Browser me = Browser.signIn(annotator, "password-" + annotator);
        String tampered = me.sessionCookie().replaceFirst("^.", me.sessionCookie().startsWith("A") ? "B" : "A");
        new Browser(tampered, me.csrf()).script().get("/api/tasks/stats").then().statusCode(401);
        Response out = me.script().post("/logout");
        assertEquals(204, out.statusCode());
        assertTrue(out.header("Set-Cookie").contains("Max-Age=0"));
    }
}
