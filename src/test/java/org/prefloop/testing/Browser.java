package org.prefloop.testing;

import io.restassured.RestAssured;
import io.restassured.response.Response;
import io.restassured.specification.RequestSpecification;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A browser's session without the browser: signs in through the form and keeps the session
 * cookie and the page's CSRF token, as the pages' scripts do.
 */
public record Browser(String sessionCookie, String csrf) {
    private static final Pattern FORM_TOKEN = Pattern.compile("name=\"csrf\" value=\"([^\"]+)\"");
    private static final Pattern PAGE_TOKEN = Pattern.compile("name=\"csrf-token\" content=\"([^\"]+)\"");

    /** The sign-in form's answer to these credentials (not followed). */
    public static Response postSignIn(String user, String password, String next) {
        return postSignIn(RestAssured.given(), user, password, next);
    }

    /** The same, from a browser that already holds this session (signing in again as someone else). */
    public Response postSignInAgain(String user, String password) {
        return postSignIn(page(), user, password, null);
    }

    private static Response postSignIn(RequestSpecification from, String user, String password, String next) {
        Response form = RestAssured.given().get("/login");
        Matcher m = FORM_TOKEN.matcher(form.asString());
        if (!m.find()) throw new AssertionError("the sign-in form has no CSRF field");
        return from.redirects().follow(false).cookie("prefloop_signin", form.getCookie("prefloop_signin"))
                .formParam("username", user).formParam("password", password).formParam("csrf", m.group(1))
                .formParam("next", next == null ? "" : next).post("/login");
    }

    public static Browser signIn(String user, String password) {
        Response r = postSignIn(user, password, null);
        if (r.statusCode() != 303) throw new AssertionError("sign-in as " + user + " answered " + r.statusCode());
        String cookie = r.getCookie("prefloop_session");
        Matcher m = PAGE_TOKEN.matcher(RestAssured.given().cookie("prefloop_session", cookie).get("/annotate/history").asString());
        if (!m.find()) throw new AssertionError("the page carries no CSRF token");
        return new Browser(cookie, m.group(1));
    }

    /** A script's request: the cookie, X-Requested-With, and the CSRF token. */
    public RequestSpecification script() {
        return page().header("X-Requested-With", "prefloop").header("X-CSRF-Token", csrf);
    }

    /** A plain request with the session cookie only. */
    public RequestSpecification page() {
        return RestAssured.given().redirects().follow(false).cookie("prefloop_session", sessionCookie);
    }
}
