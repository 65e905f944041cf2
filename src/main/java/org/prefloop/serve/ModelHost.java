package org.prefloop.serve;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.Generator;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ProjectionHook;
import org.prefloop.model.TextTokenizer;
import org.prefloop.platform.ProblemException;
import org.prefloop.platform.Settings;
import org.prefloop.registry.ModelVersion;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The models this replica serves. Base checkpoints are loaded once and shared; a registered
 * version is a base plus (for trained versions) a LoRA adapter, kept in a bounded per-base cache
 * and applied per row of a batch: versions over one base share its forward passes. A request names a version, or the alias of the promoted one,
 * which is looked up on every request: promoting a version switches new requests at once,
 * while batches already running finish on the version they started with.
 */
@ApplicationScoped
public class ModelHost {
    private static final Logger LOG = Logger.getLogger(ModelHost.class);

    Optional<String> configuredBase;

    /** LoRA adapters kept loaded per base (least recently used evicted first; adapters in use stay). */
    int adapterCacheSize;

    @Inject
    void configure(Settings settings) {
        configuredBase = settings.model();
        adapterCacheSize = settings.serve().adapterCache();
    }

    private final Map<Path, Base> bases = new ConcurrentHashMap<>();
    private final Map<Long, Resolved> versions = new ConcurrentHashMap<>();
    /** Adapters loaded at run time by name (vLLM's API, {@link RuntimeAdapterResource}); they come before registry names. */
    private final Map<String, Resolved> runtimeAdapters = new ConcurrentHashMap<>();

    /** A loaded base checkpoint with its tokenizer, chat template, generator and the adapters loaded over it. */
    record Base(Path dir, LlamaModel model, TextTokenizer tokenizer, ChatTemplate template, Generator generator, AdapterCache adapters) {
    }

    /**
     * What a sequence runs on: a base and, for a trained version, its adapter directory (null for
     * the base itself). Sequences of any versions over one base share a batch; each holds its
     * adapter from {@link #acquireAdapter} until {@link #releaseAdapter}.
     */
    record Resolved(String name, Base base, Path adapterPath) {
        String render(List<ChatCompletionRequest.Message> messages) {
            return base.template().render(messages.stream().map(m -> new ChatTemplate.ChatMessage(m.role(), m.text())).toList(), true);
        }

        /** The adapter's projection hook (loaded into the base's bounded cache if needed), or null for the base. */
        ProjectionHook acquireAdapter() {
            return adapterPath == null ? null : base.adapters().acquire(adapterPath);
        }

        void releaseAdapter() {
            if (adapterPath != null) base.adapters().release(adapterPath);
        }
    }

    /** Resolves a request's model name: the promoted alias, a registered version, or the configured base. */
    Resolved resolve(String requested) {
        String name = requested == null || requested.isBlank() ? ModelsResource.PROMOTED_ALIAS : requested;
        Resolved runtime = runtimeAdapters.get(name);
        if (runtime != null) return runtime;
        // a base checkpoint's path also names it, as vLLM names its base model by its --model path
        Optional<ModelVersion> version = QuarkusTransaction.requiringNew().call(() ->
                name.equals(ModelsResource.PROMOTED_ALIAS) ? ModelVersion.promoted() : ModelVersion.byName(name)
                        .or(() -> ModelVersion.<ModelVersion>find("baseModel = ?1 and adapterPath is null order by id", name).firstResultOptional()));
        if (version.isPresent()) {
            ModelVersion v = version.get();
            return versions.computeIfAbsent(v.id, id -> load(v));
        }
        throw new ProblemException(404, "model", "model '" + name + "' is not registered"
                + (name.equals(ModelsResource.PROMOTED_ALIAS) ? " (no version is promoted; set PREFLOOP_MODEL to a base checkpoint)" : ""));
    }

    /**
     * Loads a PEFT adapter directory over the configured base (PREFLOOP_MODEL) under {@code name}.
     * False when the name is taken; IllegalArgumentException (or UncheckedIOException) when the
     * directory is not an adapter of that base.
     */
    boolean loadAdapter(String name, Path dir) {
        if (runtimeAdapters.containsKey(name)) return false;
        String baseDir = configuredBase.filter(d -> !d.isBlank())
                .orElseThrow(() -> new IllegalStateException("no base model is configured (PREFLOOP_MODEL)"));
        Base b = base(Path.of(baseDir));
        Resolved r = new Resolved(name, b, dir.toAbsolutePath().normalize());
        r.acquireAdapter(); // not an adapter of this base: refused here, before the name is taken
        r.releaseAdapter();
        if (runtimeAdapters.putIfAbsent(name, r) != null) return false;
        LOG.infof("Loaded adapter '%s' from %s at run time", name, dir);
        return true;
    }

    /**
     * Unloads a run-time adapter; false when none has that name. Batches already running on it
     * finish with it; its weights stay with the base model's arrays (they are small next to it).
     */
    boolean unloadAdapter(String name) {
        return runtimeAdapters.remove(name) != null;
    }

    private Resolved load(ModelVersion v) {
        Base b = base(Path.of(v.baseModel));
        Resolved r = new Resolved(v.name, b, v.adapterPath == null ? null : Path.of(v.adapterPath).toAbsolutePath().normalize());
        r.acquireAdapter(); // a broken adapter fails here, on the request that names the version first
        r.releaseAdapter();
        LOG.infof("Serving version '%s' (base %s%s)", v.name, v.baseModel, v.adapterPath == null ? "" : ", adapter " + v.adapterPath);
        return r;
    }

    private Base base(Path dir) {
        return bases.computeIfAbsent(dir.toAbsolutePath().normalize(), d -> {
            if (!Files.isDirectory(d)) throw new ProblemException(503, "model", "base model directory " + d + " does not exist");
            LlamaModel model = LlamaModel.load(d);
            TextTokenizer tokenizer = TextTokenizer.load(d);
            LOG.infof("Loaded base model %s (%s)", d, model.config().modelType());
            return new Base(d, model, tokenizer, ChatTemplate.load(d), new Generator(model, tokenizer), new AdapterCache(model, adapterCacheSize));
        });
    }

    /**
     * PREFLOOP_MODEL names the base checkpoint to start from: it is registered as a version
     * (once), and promoted when nothing else is, so a fresh service serves it at once.
     */
    void registerBase(@Observes StartupEvent event, org.prefloop.platform.Roles roles) {
        if (!roles.has("serve")) return;
        configuredBase.ifPresent(dir -> {
            if (!Files.isRegularFile(Path.of(dir).resolve("config.json"))) {
                LOG.warnf("PREFLOOP_MODEL %s has no config.json (yet); requests for it fail until it does", Path.of(dir).toAbsolutePath());
            }
        });
        configuredBase.ifPresent(dir -> QuarkusTransaction.requiringNew().run(() -> {
            String path = Path.of(dir).toAbsolutePath().normalize().toString();
            ModelVersion base = ModelVersion.<ModelVersion>find("baseModel = ?1 and adapterPath is null", path).firstResultOptional()
                    .orElseGet(() -> {
                        ModelVersion v = new ModelVersion();
                        v.name = "base-" + Path.of(path).getFileName();
                        v.baseModel = path;
                        v.persist();
                        return v;
                    });
            if (ModelVersion.promoted().isEmpty()) base.promotedAt = java.time.OffsetDateTime.now();
        }));
    }

    void stop(@Observes ShutdownEvent event) {
        bases.values().forEach(b -> {
            b.adapters().close();
            b.tokenizer().close();
            b.model().close();
        });
        bases.clear();
        versions.clear();
        runtimeAdapters.clear();
    }
}
