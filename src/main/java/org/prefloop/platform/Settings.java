package org.prefloop.platform;

import io.quarkus.runtime.annotations.StaticInitSafe;
import io.quarkus.runtime.configuration.MemorySize;
import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * Every {@code prefloop.*} setting of the service, in one place. Each is also an environment
 * variable: the upper-cased name with dots and dashes as underscores ({@code prefloop.serve.max-batch}
 * is {@code PREFLOOP_SERVE_MAX_BATCH}); application.properties gives some a shorter one (its
 * {@code ${PREFLOOP_...:default}} expressions) and holds the defaults that are not
 * {@code @WithDefault} here, and the README's Configuration section lists them all (SettingsTest
 * checks both). The model core (org.prefloop.train, model, lora) knows nothing of this: it is handed
 * plain values. The one setting outside is {@code -Dprefloop.decode.threads}, a JVM system property
 * the core's Generator reads itself.
 *
 * <p>Static-init safe: the REST filters (ApiGuards, Roles) are built while Quarkus initialises
 * statically and read their settings then, as their {@code @ConfigProperty} fields did before.
 */
@StaticInitSafe
@ConfigMapping(prefix = "prefloop")
public interface Settings {

    /** Roles of this process (web, ingest, worker, serve), comma-separated; all by default. */
    List<String> roles();

    /** Where the embedded broker ({@code kafka/}) and the H2 store ({@code db/}) keep their data (PREFLOOP_DATA). */
    String dataDir();

    /** Password of the first admin, created when there are no users; unset: one is generated and logged once. */
    Optional<String> adminPassword();

    /** The base model directory served and promoted at start when nothing is promoted; unset: none. */
    Optional<String> model();

    /** The only places a request may name a file: run specs' datasets and models, evaluation files. */
    List<String> fileRoots();

    /** API keys for /v1 seeded at start (each 20+ characters). */
    Optional<List<String>> apiKeys();

    /** bcrypt's cost (log2 of its rounds) for stored passwords; every HTTP Basic request pays one check. */
    @WithDefault("10")
    int bcryptCost();

    /** Where a process playing web but not serve forwards /v1, /api/rounds and /api/evaluations. */
    Optional<URI> serveUrl();

    /** Where runs write checkpoints, adapters and models (a shared volume in Kubernetes). */
    String runsDir();

    /** Where a run executes when its spec names no executor: djl (built in), trl or kubeflow. */
    @WithDefault("djl")
    String executor();

    Api api();

    Kafka kafka();

    Session session();

    SignIn signIn();

    Annotation annotation();

    Gold gold();

    Judge judge();

    Serve serve();

    Worker worker();

    Trl trl();

    Kubeflow kubeflow();

    interface Api {
        /** Largest /api body read; the streaming imports limit each line themselves instead. */
        MemorySize maxBodySize();
    }

    /**
     * The in-process broker. KafkaConfigSourceFactory reads these (and roles, data-dir) while the
     * configuration is still being built, before this mapping exists; they are listed here so that
     * every setting is in one place, with the same defaults.
     */
    interface Kafka {
        /** Start an in-process broker when no kafka.bootstrap.servers is given. */
        @WithDefault("true")
        boolean embedded();

        /** Keep the broker's log in a fresh temporary directory (tests: no event of an earlier run is redelivered). */
        @WithDefault("false")
        boolean ephemeral();

        /** Port of the in-process broker; 0: a free one. */
        @WithDefault("0")
        int port();
    }

    interface Session {
        /** Signs browser session cookies (32+ characters); replicas share it. Unset: drawn at start. */
        Optional<String> key();

        /** How long a browser session lasts. */
        Duration lifetime();

        /** Mark session cookies Secure (HTTPS only; browsers accept them on http://localhost too). */
        boolean secureCookie();
    }

    interface SignIn {
        /** Failed sign-ins per user name within the window before it is locked. */
        int maxFailures();

        /** Failed sign-ins per client address within the window before it is locked. */
        int maxAddressFailures();

        /** The window failed sign-ins are counted in; a lock lasts until the oldest failure leaves it. */
        Duration window();
    }

    interface Annotation {
        /** How many annotators see each comparison (2+ lets agreement be measured). */
        int overlap();

        /** An assignment left unanswered this long goes back to the queue. */
        Duration assignmentTtl();

        /** How long the workspace holds a judgment for undo before sending it. */
        int undoSeconds();

        /** Criteria judged beside the overall verdict (e.g. helpfulness, correctness, safety). */
        Optional<List<String>> criteria();

        /** Judgments a day asked of each annotator, shown as progress; 0: none. */
        int dailyTarget();
    }

    interface Gold {
        /** Share of new queue items that are gold items (comparisons with a known answer). */
        double rate();

        /** Gold answers since the last resume before an annotator can be paused. */
        int minAnswers();

        /** Gold accuracy below which an annotator is paused. */
        double pauseBelow();
    }

    interface Judge {
        /** The OpenAI-compatible base URL the LLM judge asks; unset: this process's own /v1. */
        Optional<String> url();
    }

    interface Serve {
        /** An OpenAI-compatible engine with vLLM's run-time LoRA API that generation goes to; unset: PrefLoop's own. */
        Optional<URI> backendUrl();

        /** The bearer key sent to that engine. */
        Optional<String> backendApiKey();

        /** Version adapters kept loaded on that engine (match vLLM's --max-cpu-loras). */
        @WithDefault("8")
        int backendMaxAdapters();

        /** Answer vLLM's POST /v1/load_lora_adapter and /v1/unload_lora_adapter. */
        @WithDefault("false")
        boolean runtimeLoraUpdating();

        /** Sequences decoded together in one batch (the KV cache budget may admit fewer). */
        @WithDefault("16")
        int maxBatch();

        /** Requests waiting for the batch before new ones are refused (429). */
        @WithDefault("64")
        int maxQueue();

        /** Memory the running sequences' key/value caches may take (a lone request always runs). */
        @WithDefault("1024")
        long kvCacheMb();

        /** Prompts longer than this many tokens are prefilled in chunks between decode steps; 0: at once. */
        @WithDefault("256")
        int prefillChunk();

        /**
         * Prefill passes run between two layers of a decode step for requests that arrived during it
         * (their first token before the step ends), at most; 0: arrivals wait for the step's end.
         */
        @WithDefault("2")
        int prefillsInsideStep();

        /** Cached key/value blocks of shared prompt prefixes, counted inside kv-cache-mb; 0: off. */
        @WithDefault("128")
        long prefixCacheMb();

        /** LoRA adapters kept loaded by PrefLoop's own engine, least recently used evicted first. */
        @WithDefault("8")
        int adapterCache();
    }

    interface Worker {
        /** How long a worker's hold on a run lasts without renewal; a dead worker's run is taken over after it. */
        int leaseSeconds();
    }

    interface Trl {
        /** The Python the trl executor runs. */
        @WithDefault("python3")
        String python();
    }

    interface Kubeflow {
        /** Where TrainJobs are created; unset: the client's namespace (in a pod, its own). */
        Optional<String> namespace();

        /** The ClusterTrainingRuntime TrainJobs reference. */
        @WithDefault("prefloop-trl")
        String runtime();

        /** Kueue LocalQueue TrainJobs are labelled for; unset: no Kueue. */
        Optional<String> queue();

        /** An image that replaces the runtime's for every TrainJob. */
        Optional<String> image();

        /** How often the worker reads a TrainJob's status and progress. */
        @WithDefault("5000")
        long pollMillis();

        /** How long the Kubernetes API may fail in a row before the TrainJob's run fails. */
        @WithDefault("600")
        long apiErrorsSeconds();

        /** The Kubernetes API server; unset: the client's own discovery (in a pod, the service account's). */
        Optional<String> masterUrl();
    }
}
