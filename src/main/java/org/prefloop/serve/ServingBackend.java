package org.prefloop.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;
import org.prefloop.model.Generator;
import org.prefloop.platform.ProblemException;
import org.prefloop.platform.Settings;
import org.prefloop.registry.ModelVersion;
import org.prefloop.registry.VersionPromoted;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * An external OpenAI-compatible serving engine with vLLM's run-time LoRA API
 * ({@code prefloop.serve.backend-url}; vLLM started with {@code --enable-lora} and
 * {@code VLLM_ALLOW_RUNTIME_LORA_UPDATING=True}). When it is set, the serve role generates
 * nothing itself: {@code /v1} is forwarded to it ({@link BackendForward}) and rounds and
 * evaluations ask it ({@link Completions}), while the registry stays PrefLoop's.
 * <p>
 * Names: a trained version is loaded there as a LoRA adapter under the version's name; a base
 * version is the engine's base model, which vLLM names by its {@code --model} path (the same
 * path as the registry's {@code base_model}, as the model store is mounted at the same place).
 * Requests are rewritten to these names, so the promoted alias is resolved by the registry at
 * each request, as PrefLoop's own engine does. Promotion also loads the version under the alias
 * ({@value ModelsResource#PROMOTED_ALIAS}) for clients that talk to the engine directly.
 * <p>
 * The engine holds at most {@code prefloop.serve.backend-max-adapters} version adapters: one
 * more is loaded on demand (first request naming a version) and the least recently used one
 * that is not promoted is retired (unloaded). The engine forgets adapters when it restarts; a
 * request the engine answers 404 for a version's name is loaded again and retried once.
 */
@ApplicationScoped
public class ServingBackend {
    private static final long HANG_UP_POLL_MS = 100;
    private static final Logger LOG = Logger.getLogger(ServingBackend.class);
    static final String LOAD = "/v1/load_lora_adapter";
    static final String UNLOAD = "/v1/unload_lora_adapter";

    Optional<URI> url;
    Optional<String> apiKey;
    int maxAdapters;
    @Inject
    ObjectMapper json;

    @Inject
    void configure(Settings settings) {
        url = settings.serve().backendUrl();
        apiKey = settings.serve().backendApiKey();
        maxAdapters = settings.serve().backendMaxAdapters();
    }

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    /** Version adapters loaded on the engine by this process: name -> path, least recently used first. */
    private final LinkedHashMap<String, String> loaded = new LinkedHashMap<>(16, 0.75f, true);

    public boolean enabled() {
        return url.isPresent();
    }

    URI url() {
        return url.orElseThrow();
    }

    Optional<String> apiKey() {
        return apiKey.filter(k -> !k.isBlank());
    }

    /** The registry's version a request names (a version, or the alias of the promoted one); 404 when none. */
    ModelVersion version(String requested) {
        String name = requested == null || requested.isBlank() ? ModelsResource.PROMOTED_ALIAS : requested;
        return QuarkusTransaction.requiringNew().call(() ->
                        name.equals(ModelsResource.PROMOTED_ALIAS) ? ModelVersion.promoted() : ModelVersion.byName(name))
                .orElseThrow(() -> ProblemException.notFound("model", "model '" + name + "' is not registered"
                        + (name.equals(ModelsResource.PROMOTED_ALIAS) ? " (no version is promoted)" : "")));
    }

    /** The name the engine knows a version by. */
    static String servedName(ModelVersion v) {
        return v.adapterPath == null ? v.baseModel : v.name;
    }

    /** Loads a version's adapter on the engine unless this process already did; retires the least recently used beyond the bound. */
    void ensureLoaded(ModelVersion v, Supplier<Set<String>> keep) {
        if (v.adapterPath == null) return;
        synchronized (this) {
            if (loaded.get(v.name) != null) return; // get() also marks it as recently used
            load(v.name, v.adapterPath);
            loaded.put(v.name, v.adapterPath);
            if (loaded.size() <= maxAdapters) return;
            Set<String> kept = keep.get();
            for (Iterator<String> it = loaded.keySet().iterator(); it.hasNext() && loaded.size() > maxAdapters; ) {
                String name = it.next();
                if (name.equals(v.name) || kept.contains(name)) continue;
                try {
                    unload(name);
                    it.remove();
                    LOG.infof("retired the adapter of '%s' from the serving backend (more than %d loaded)", name, maxAdapters);
                } catch (ProblemException e) {
                    LOG.warnf("could not retire the adapter of '%s': %s", name, e.getMessage());
                    return;
                }
            }
        }
    }

    /** The promoted version's name, which is never retired. */
    Set<String> promotedName() {
        return QuarkusTransaction.requiringNew().call(() -> ModelVersion.promoted().map(p -> Set.of(p.name)).orElse(Set.of()));
    }

    /** The engine lost a version's adapter (it restarted): load it again on next use. */
    synchronized void forget(String name) {
        loaded.remove(name);
    }

    /**
     * Promotion: the version's adapter is loaded under its name, then the alias is moved to it.
     * Any refusal of the engine stops the promotion (the registry keeps the previous version,
     * which PrefLoop's /v1 keeps serving); when the alias cannot be moved it is pointed back at
     * the previous version's adapter, so the engine's alias and the registry agree.
     */
    void onPromotion(@Observes VersionPromoted event) {
        if (!enabled()) return;
        ModelVersion v = event.version();
        ModelVersion previous = event.previous();
        synchronized (this) {
            ensureLoaded(v, () -> Set.of(v.name));
            unload(ModelsResource.PROMOTED_ALIAS);
            if (v.adapterPath == null) return; // a base version: the engine's base model itself, no adapter under the alias
            try {
                load(ModelsResource.PROMOTED_ALIAS, v.adapterPath);
            } catch (ProblemException failed) {
                if (previous != null && previous.adapterPath != null) {
                    try {
                        load(ModelsResource.PROMOTED_ALIAS, previous.adapterPath);
                    } catch (ProblemException again) {
                        LOG.warnf("the serving backend's alias could not be restored to '%s': %s", previous.name, again.getMessage());
                    }
                }
                throw failed;
            }
            LOG.infof("serving backend: '%s' and the alias '%s' now load %s", v.name, ModelsResource.PROMOTED_ALIAS, v.adapterPath);
        }
    }

    private void load(String name, String path) {
        Answer a = post(LOAD, Map.of("lora_name", name, "lora_path", path), Duration.ofMinutes(5));
        if (a.status == 200 || (a.status == 400 && a.body.contains("already been loaded"))) return;
        if (a.status == 404 || a.status == 405) {
            throw new ProblemException(503, "backend", "the serving backend at " + url() + " has no run-time LoRA API (HTTP " + a.status
                    + " on " + LOAD + "): start vLLM with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True");
        }
        throw new ProblemException(502, "backend", "the serving backend refused to load the adapter of '" + name + "' from " + path
                + ": HTTP " + a.status + ": " + a.message());
    }

    private void unload(String name) {
        Answer a = post(UNLOAD, Map.of("lora_name", name), Duration.ofSeconds(60));
        // 404 (400 in older vLLM): it was not loaded, which is what was wanted
        if (a.status == 200 || a.status == 404 || a.status == 400) return;
        throw new ProblemException(502, "backend", "the serving backend refused to unload '" + name + "': HTTP " + a.status + ": " + a.message());
    }

    /**
     * Rounds and evaluations through the engine: one chat completion per conversation, all sent
     * at once so the engine batches them. The engine's refusals of a prompt (its context check)
     * are a 400 naming {@code field}; an engine that does not answer is a 502. Once
     * {@code hungUp} is true the requests still open are aborted (the engine sees its client hang
     * up and drops their sequences) and a 503 problem ends the call nobody waits for.
     */
    List<Generator.Completion> complete(String model, List<List<ChatCompletionRequest.Message>> conversations,
                                        Generator.GenerationParams params, String field, BooleanSupplier hungUp) {
        ModelVersion v = version(model);
        for (int attempt = 0; ; attempt++) {
            ensureLoaded(v, this::promotedName);
            List<CompletableFuture<Answer>> pending = new ArrayList<>();
            for (List<ChatCompletionRequest.Message> conversation : conversations) {
                pending.add(postAsync("/v1/chat/completions", chatBody(servedName(v), conversation, params)));
            }
            awaitAll(pending, hungUp, field);
            List<Answer> answers = new ArrayList<>();
            for (CompletableFuture<Answer> p : pending) answers.add(join(p));
            if (attempt == 0 && v.adapterPath != null && answers.stream().anyMatch(a -> a.status == 404)) {
                forget(v.name); // the engine restarted since it loaded the version: load it again, once
                continue;
            }
            List<Generator.Completion> out = new ArrayList<>();
            for (int i = 0; i < answers.size(); i++) {
                Answer a = answers.get(i);
                if (a.status == 400) throw ProblemException.badRequest(field, "conversation " + i + ": the serving backend refused it: " + a.message());
                if (a.status != 200) {
                    throw new ProblemException(a.status == 404 ? 503 : 502, "backend", "the serving backend answered HTTP " + a.status
                            + " for '" + v.name + "': " + a.message());
                }
                JsonNode choice = a.tree(json).path("choices").path(0);
                out.add(new Generator.Completion(new long[0], choice.path("message").path("content").asText(""),
                        choice.path("finish_reason").asText("stop"), a.tree(json).path("usage").path("prompt_tokens").asInt()));
            }
            return out;
        }
    }

    /** Waits until every request is answered, or aborts those still open once the client hangs up. */
    private static void awaitAll(List<CompletableFuture<Answer>> pending, BooleanSupplier hungUp, String field) {
        CompletableFuture<Void> all = CompletableFuture.allOf(pending.toArray(CompletableFuture[]::new));
        while (true) {
            try {
                all.get(HANG_UP_POLL_MS, TimeUnit.MILLISECONDS);
                return;
            } catch (TimeoutException stillRunning) {
                if (!hungUp.getAsBoolean()) continue;
                pending.forEach(p -> p.cancel(true)); // the HTTP client aborts the exchange: the engine sees a hang-up
                throw new ProblemException(503, field, "the client went away before the answer");
            } catch (ExecutionException failed) {
                return; // join reports it, request by request
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                pending.forEach(p -> p.cancel(true));
                throw new ProblemException(503, field, "interrupted while the serving backend generated");
            }
        }
    }

    private ObjectNode chatBody(String model, List<ChatCompletionRequest.Message> conversation, Generator.GenerationParams params) {
        ObjectNode body = json.createObjectNode().put("model", model).put("max_tokens", params.maxTokens())
                .put("temperature", params.temperature()).put("top_p", params.topP());
        if (params.seed() != null) body.put("seed", params.seed());
        if (!params.stop().isEmpty()) body.set("stop", json.valueToTree(params.stop()));
        ArrayNode messages = body.putArray("messages");
        for (ChatCompletionRequest.Message m : conversation) messages.addObject().put("role", m.role()).put("content", m.text());
        return body;
    }

    /** An answer of the engine. */
    record Answer(int status, String body) {
        JsonNode tree(ObjectMapper json) {
            try {
                return json.readTree(body);
            } catch (IOException e) {
                return json.nullNode();
            }
        }

        /** The engine's error message (OpenAI's shape, or vLLM's older flat one), else the body. */
        String message() {
            try {
                JsonNode t = new ObjectMapper().readTree(body);
                JsonNode m = t.path("error").path("message");
                if (m.isTextual()) return m.asText();
                if (t.path("message").isTextual()) return t.path("message").asText();
            } catch (IOException notJson) {
                // plain text
            }
            return body.length() > 300 ? body.substring(0, 300) + "..." : body;
        }
    }

    private HttpRequest.Builder request(String path, Object body, Duration timeout) {
        HttpRequest.Builder b;
        try {
            b = HttpRequest.newBuilder(url().resolve(path)).timeout(timeout).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(json.writeValueAsString(body)));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        apiKey().ifPresent(k -> b.header("Authorization", "Bearer " + k));
        return b;
    }

    private Answer post(String path, Object body, Duration timeout) {
        return join(postAsync(path, body, timeout));
    }

    private CompletableFuture<Answer> postAsync(String path, Object body) {
        return postAsync(path, body, Duration.ofMinutes(10));
    }

    private CompletableFuture<Answer> postAsync(String path, Object body, Duration timeout) {
        return http.sendAsync(request(path, body, timeout).build(), HttpResponse.BodyHandlers.ofString())
                .thenApply(r -> new Answer(r.statusCode(), r.body()));
    }

    private Answer join(CompletableFuture<Answer> pending) {
        try {
            return pending.join();
        } catch (CompletionException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            throw new ProblemException(502, "backend", "the serving backend at " + url() + " did not answer: "
                    + (cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage()));
        }
    }
}
