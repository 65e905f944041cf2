package org.prefloop.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.RequestOptions;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import org.jboss.logging.Logger;
import org.prefloop.platform.Problem;
import org.prefloop.platform.Roles;
import org.prefloop.platform.Settings;

import java.net.URI;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * A web-only process (the one the load balancer reaches) forwards {@code /v1} and the two /api
 * endpoints that generate ({@link #GENERATING}: the next round, held-out evaluations) to the serve
 * role at {@code PREFLOOP_SERVE_URL}, streaming both ways, so apps, the console's playground and
 * the round and evaluation forms reach the model where it is loaded (web pods mount no model
 * store). Authentication stays with the serve role: the API key, HTTP Basic, or an admin's
 * session cookie with its CSRF token, travel through unchanged.
 */
@ApplicationScoped
public class ServeProxy {
    private static final Logger LOG = Logger.getLogger(ServeProxy.class);
    static final List<String> FORWARDED = List.of("Authorization", "Content-Type", "Accept", "Cookie", "X-CSRF-Token", "X-Requested-With");
    static final Set<String> HOP_BY_HOP = Set.of("connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection");
    /** The /api paths that generate, and so run on the serve role ({@link Roles} refuses them elsewhere). */
    public static final List<String> GENERATING = List.of("/api/rounds", "/api/evaluations");

    void routes(@Observes Router router, Vertx vertx, Roles roles, ObjectMapper json,
                Settings settings) {
        Optional<URI> serveUrl = settings.serveUrl();
        if (roles.has("serve") || !roles.has("web") || serveUrl.isEmpty()) return;
        URI target = serveUrl.get();
        boolean tls = "https".equals(target.getScheme());
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setDefaultHost(target.getHost())
                .setDefaultPort(target.getPort() > 0 ? target.getPort() : tls ? 443 : 80).setSsl(tls).setMaxPoolSize(64));
        router.route("/v1/*").order(-1000).handler(rc -> forward(client, rc, ServeProxy::openAiGone));
        for (String path : GENERATING) {
            router.route(path).order(-1000).handler(rc -> forward(client, rc, message -> problemGone(json, message)));
            router.route(path + "/*").order(-1000).handler(rc -> forward(client, rc, message -> problemGone(json, message)));
        }
        LOG.infof("forwarding /v1, %s to the serve role at %s", String.join(", ", GENERATING), target);
    }

    /** The body of a 502: OpenAI's error shape on /v1, a problem on /api. */
    interface GoneBody {
        String[] of(String message); // {content type, body}
    }

    static String[] openAiGone(String message) {
        return new String[]{"application/json", "{\"error\":{\"message\":\"the serve role did not answer: " + message.replace("\"", "'")
                + "\",\"type\":\"server_error\",\"param\":null,\"code\":\"upstream_unavailable\"}}"};
    }

    private static String[] problemGone(ObjectMapper json, String message) {
        try {
            return new String[]{Problem.MEDIA_TYPE, json.writeValueAsString(new Problem("about:blank", "Bad Gateway", 502,
                    "the serve role did not answer: " + message, null))};
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * A client that hangs up, before the answer or in the middle of a stream, resets the forwarded
     * request: the serve role sees its connection close and drops the sequence from its queue or
     * batch, as it does for a client of its own. Without this the serve role would go on
     * generating for nobody until max_tokens.
     */
    static void cancelOnHangUp(RoutingContext rc, HttpClientRequest upstream) {
        HttpServerResponse response = rc.response();
        if (response.closed()) {
            upstream.reset();
            return;
        }
        response.closeHandler(v -> upstream.reset()); // a no-op once the upstream answer has ended
    }

    private static void forward(HttpClient client, RoutingContext rc, GoneBody gone) {
        HttpServerRequest in = rc.request();
        in.pause();
        RequestOptions options = new RequestOptions().setMethod(in.method()).setURI(in.uri());
        for (String h : FORWARDED) {
            String v = in.getHeader(h);
            if (v != null) options.putHeader(h, v);
        }
        client.request(options)
                .compose(out -> {
                    cancelOnHangUp(rc, out);
                    return out.send(in);
                })
                .onSuccess(res -> {
                    HttpServerResponse response = rc.response().setStatusCode(res.statusCode());
                    res.headers().forEach(e -> {
                        if (!HOP_BY_HOP.contains(e.getKey().toLowerCase())) response.putHeader(e.getKey(), e.getValue());
                    });
                    if (res.getHeader("Content-Length") == null) response.setChunked(true); // streamed answers
                    // a write to a client that went away fails: a second sign of the hang-up, should the close pass unseen
                    res.pipeTo(response).onFailure(e -> res.request().reset());
                })
                .onFailure(e -> {
                    if (rc.response().closed()) return; // the client hung up, and the upstream request was reset for it
                    if (rc.response().headWritten()) {
                        rc.response().reset();
                        return;
                    }
                    String[] body = gone.of(String.valueOf(e.getMessage()));
                    rc.response().setStatusCode(502).putHeader("Content-Type", body[0]).end(body[1]);
                });
    }
}
