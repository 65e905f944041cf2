package org.prefloop.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.Cookie;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.RequestOptions;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import org.jboss.logging.Logger;
import org.prefloop.identity.Session;
import org.prefloop.identity.SessionCookies;
import org.prefloop.platform.ProblemException;
import org.prefloop.platform.Roles;
import org.prefloop.registry.ModelVersion;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;
import java.util.Optional;

/**
 * On a serve role with a serving backend ({@link ServingBackend}), generation requests on /v1 go
 * to the engine: PrefLoop checks the API key (or an admin's session and its CSRF token), resolves
 * the model name through the registry (the alias means the promoted version at this moment),
 * makes sure the version's adapter is loaded there, rewrites {@code model} to the engine's name
 * for it and streams the engine's answer back. The answer's {@code model} names the version that
 * served it. {@code /v1/models} stays the registry's ({@link ModelsResource}), answered here.
 * <p>
 * Failures in OpenAI's error shape: 502 {@code upstream_unavailable} when the engine does not
 * answer, 503 {@code model_not_loaded} when it does not know the version even after loading it
 * again; its own refusals (400 for a bad request, 429) pass through as it sent them.
 */
@ApplicationScoped
public class BackendForward {
    private static final Logger LOG = Logger.getLogger(BackendForward.class);
    static final List<String> PATHS = List.of("/v1/chat/completions", "/v1/completions");
    /** Larger bodies are refused before they are read (a chat request is a few KiB; this leaves room for long contexts). */
    static final int MAX_BODY = 8 * 1024 * 1024;

    void routes(@Observes Router router, Vertx vertx, Roles roles, ServingBackend backend, ApiKeys keys, SessionCookies sessions, ObjectMapper json) {
        if (!roles.has("serve") || !backend.enabled()) return;
        URI target = backend.url();
        boolean tls = "https".equals(target.getScheme());
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setDefaultHost(target.getHost())
                .setDefaultPort(target.getPort() > 0 ? target.getPort() : tls ? 443 : 80).setSsl(tls).setMaxPoolSize(256));
        Forward forward = new Forward(vertx, client, backend, keys, sessions, json);
        for (String path : PATHS) router.post(path).order(-1000).handler(forward::handle);
        LOG.infof("serving backend: /v1 generation goes to %s", target);
    }

    /** A request resolved and ready for the engine. */
    record Prepared(ModelVersion version, Buffer body) {
    }

    record Forward(Vertx vertx, HttpClient client, ServingBackend backend, ApiKeys keys, SessionCookies sessions, ObjectMapper json) {

        void handle(RoutingContext rc) {
            HttpServerRequest in = rc.request();
            String length = in.getHeader("Content-Length");
            if (length != null && length.chars().allMatch(Character::isDigit) && length.length() < 12 && Long.parseLong(length) > MAX_BODY) {
                error(rc, 413, "request body is larger than " + MAX_BODY / (1024 * 1024) + " MiB", null, "request_too_large");
                return;
            }
            in.body().onFailure(e -> error(rc, 400, "could not read the request body: " + e.getMessage(), null, null))
                    .onSuccess(body -> vertx.<Prepared>executeBlocking(() -> prepare(in, body), false)
                            .onSuccess(p -> send(rc, p, false))
                            .onFailure(e -> fail(rc, e)));
            in.resume(); // Quarkus hands the request over paused
        }

        /** Authentication, the model's name, the adapter on the engine: all blocking (store, engine), off the event loop. */
        private Prepared prepare(HttpServerRequest in, Buffer body) {
            authorize(in);
            if (body.length() > MAX_BODY) throw new OpenAiException(413, "request body is larger than " + MAX_BODY / (1024 * 1024) + " MiB", null, "request_too_large");
            JsonNode tree;
            try {
                tree = json.readTree(body.getBytes());
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw OpenAiException.invalid(null, "invalid_json", "the body is not valid JSON: " + e.getOriginalMessage());
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            if (!(tree instanceof ObjectNode request)) throw OpenAiException.invalid(null, "invalid_json", "the body must be a JSON object");
            JsonNode model = request.get("model");
            if (model != null && !model.isNull() && !model.isTextual()) throw OpenAiException.invalid("model", "invalid_type", "model must be a string");
            ModelVersion v;
            try {
                v = backend.version(model == null || model.isNull() ? null : model.asText());
                backend.ensureLoaded(v, backend::promotedName);
            } catch (ProblemException e) {
                throw new OpenAiException(e.status(), e.getMessage(), e.status() == 404 ? "model" : null,
                        e.status() == 404 ? "model_not_found" : e.status() == 503 ? "model_not_loaded" : "upstream_unavailable");
            }
            request.put("model", ServingBackend.servedName(v));
            try {
                return new Prepared(v, Buffer.buffer(json.writeValueAsBytes(request)));
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }

        /** The same credentials /v1 takes everywhere (BearerKeyFilter): an API key, or an admin's session with its CSRF token. */
        private void authorize(HttpServerRequest in) {
            String header = in.getHeader("Authorization");
            String secret = header != null && header.regionMatches(true, 0, "Bearer ", 0, 7) ? header.substring(7).trim() : null;
            if (keys.valid(secret)) return;
            Cookie cookie = in.getCookie(Session.COOKIE);
            if (secret == null && cookie != null) {
                Optional<Session> session = sessions.read(cookie.getValue());
                String sent = in.getHeader(Session.CSRF_HEADER);
                if (session.isPresent() && session.get().admin() && sent != null
                        && MessageDigest.isEqual(sent.getBytes(StandardCharsets.UTF_8), session.get().csrf().getBytes(StandardCharsets.UTF_8))) {
                    return;
                }
            }
            throw new OpenAiException(401, secret == null ? "Missing API key: send 'Authorization: Bearer <key>'." : "Invalid or revoked API key.",
                    null, "invalid_api_key");
        }

        private void send(RoutingContext rc, Prepared p, boolean retried) {
            HttpServerRequest in = rc.request();
            RequestOptions options = new RequestOptions().setMethod(HttpMethod.POST).setURI(in.uri())
                    .putHeader("Content-Type", "application/json");
            String accept = in.getHeader("Accept");
            if (accept != null) options.putHeader("Accept", accept);
            backend.apiKey().ifPresent(k -> options.putHeader("Authorization", "Bearer " + k));
            client.request(options)
                    .compose(out -> {
                        ServeProxy.cancelOnHangUp(rc, out); // a client that hangs up cancels the engine's work
                        return out.send(p.body());
                    })
                    .onSuccess(res -> {
                        if (res.statusCode() == 404 && p.version().adapterPath != null) {
                            // the engine does not know the version (it restarted): load it again and retry once
                            res.body().onComplete(ignored -> {
                                if (retried) {
                                    error(rc, 503, "the serving backend does not serve '" + p.version().name + "' although its adapter was just loaded",
                                            "model", "model_not_loaded");
                                    return;
                                }
                                vertx.<Prepared>executeBlocking(() -> {
                                    backend.forget(p.version().name);
                                    backend.ensureLoaded(p.version(), backend::promotedName);
                                    return p;
                                }, false).onSuccess(again -> send(rc, again, true)).onFailure(e -> fail(rc, e));
                            });
                            return;
                        }
                        HttpServerResponse response = rc.response().setStatusCode(res.statusCode());
                        res.headers().forEach(e -> {
                            if (!ServeProxy.HOP_BY_HOP.contains(e.getKey().toLowerCase())) response.putHeader(e.getKey(), e.getValue());
                        });
                        if (res.getHeader("Content-Length") == null) response.setChunked(true); // streamed answers
                        // a write to a client that went away fails: a second sign of the hang-up, should the close pass unseen
                        res.pipeTo(response).onFailure(e -> res.request().reset());
                    })
                    .onFailure(e -> {
                        if (rc.response().closed()) return; // the client hung up: nobody to answer
                        if (rc.response().headWritten()) {
                            rc.response().reset();
                            return;
                        }
                        error(rc, 502, "the serving backend at " + backend.url() + " did not answer: " + e.getMessage(), null, "upstream_unavailable");
                    });
        }

        private void fail(RoutingContext rc, Throwable e) {
            if (e instanceof OpenAiException o) {
                error(rc, o.status, o.getMessage(), o.param, o.code, o.type());
            } else {
                LOG.warn("forwarding to the serving backend failed", e);
                error(rc, 502, "the serving backend could not be reached: " + e.getMessage(), null, "upstream_unavailable");
            }
        }

        private void error(RoutingContext rc, int status, String message, String param, String code) {
            error(rc, status, message, param, code, new OpenAiException(status, message, param, code).type());
        }

        private void error(RoutingContext rc, int status, String message, String param, String code, String type) {
            if (rc.response().headWritten()) {
                rc.response().reset();
                return;
            }
            try {
                rc.response().setStatusCode(status).putHeader("Content-Type", "application/json")
                        .end(Buffer.buffer(json.writeValueAsBytes(BearerKeyFilter.OpenAiError.of(message, type, param, code))));
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }
    }
}
