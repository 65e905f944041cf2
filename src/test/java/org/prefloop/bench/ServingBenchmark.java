package org.prefloop.bench;

import ai.djl.Device;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import ai.djl.pytorch.jni.JniUtils;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.Generator;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.TextTokenizer;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;
import org.prefloop.testing.ServiceProcess;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Serving under load, as issue 12 asks: 8 and 32 streaming clients against
 * {@code /v1/chat/completions} of the packaged service (roles {@code serve,web}), arriving
 * {@code bench.spacingMs} apart, each sending {@code bench.requests} requests one after the
 * other, every request asking for exactly {@code bench.tokens} tokens ({@code ignore_eos}).
 * Two workloads: <em>uniform</em> (one version, a LoRA adapter over the base, temperature 1)
 * and <em>mixed</em> (greedy, seeded top-p/top-k, penalties, cycling over the base and two
 * LoRA adapters, all over the same base so they share decode steps). Two LoRA adapters (rank 8
 * on all seven projections; rank 16 on q/v) are written for the model and loaded through vLLM's
 * run-time LoRA API ({@code /v1/load_lora_adapter}).
 * <p>
 * Reports per model, clients and workload: tokens/s (the responses' usage), time to first token
 * p50/p99 (request sent to first text chunk) and inter-token latency p50/p99 (between text
 * chunks; a token whose text is empty sends none), against, in the same run: the model core's
 * single-stream and batch-of-8 decode (same prompt and length, in this JVM, before the service
 * starts) and a lone request's time to first token on the idle service. The ratios are the goals
 * of issue 12: service / core batch of 8 (at 8 clients, goal ≥ 0.8), TTFT p99 / lone TTFT (goal
 * ≤ 2), mixed / uniform tokens/s (goal ≥ 0.9).
 * <p>
 * Not a test; run with
 * {@code ./mvnw -B -q -Pbench -DskipNpm package -DskipTests -Dbench.main=org.prefloop.bench.ServingBenchmark}
 * (options through {@code -Dbench.jvm.args="-Dbench.clients=8,32 -Dbench.requests=4 -Dbench.tokens=32 -Dbench.spacingMs=50 -Dbench.models=demo,smollm2"};
 * {@code -Dbench.rate=R} for open-loop Poisson arrivals at R requests/s; {@code -Dbench.distinctPrompts=true}
 * for a prompt of its own per request; {@code -Dbench.conversation=true} for a conversation per client).
 */
public final class ServingBenchmark {
    static final String KEY = "bench-key-0123456789abcdef";
    static final int TOKENS = Integer.getInteger("bench.tokens", 32);
    static final int REQUESTS = Integer.getInteger("bench.requests", 4);
    static final int SPACING_MS = Integer.getInteger("bench.spacingMs", 50);
    /**
     * Open loop ({@code bench.rate} requests/s, above 0): instead of clients that send their next
     * request when the last one ends, clients × requests requests arrive as a Poisson process at
     * that rate (seeded), each on its own connection, as vLLM's serving benchmark sends them with
     * {@code --request-rate}; arrivals then do not fall into step with the service's decode steps.
     */
    static final double RATE = Double.parseDouble(System.getProperty("bench.rate", "0"));
    static final int CORE_BATCH = 8; // issue 12: service tokens/s at 8 clients against the core's batch of 8
    static final String PROMPT = "reverse: abcde";
    /**
     * {@code bench.distinctPrompts=true}: every request's message begins with its own number, so
     * that it shares only the chat template's system prompt with the others (false, the default:
     * one prompt for all, which the prefix cache holds after the first, all but its last token).
     */
    static final boolean DISTINCT_PROMPTS = Boolean.getBoolean("bench.distinctPrompts");
    /**
     * {@code bench.conversation=true} (closed loop only): each client's requests are the turns of
     * one conversation, every request sending the whole conversation so far (its earlier
     * messages and the replies it got) and a new user message, as a chat app does. The later
     * turns' time to first token is reported on its own line.
     */
    static final boolean CONVERSATION = Boolean.getBoolean("bench.conversation");
    private static final ObjectMapper JSON = new ObjectMapper();
    /** JVM options of the service under test ({@code bench.serviceJvm}, through JAVA_TOOL_OPTIONS): an engine setting to compare in one window. */
    static final String SERVICE_JVM = System.getProperty("bench.serviceJvm", "");
    private static final Pattern USAGE = Pattern.compile("\"completion_tokens\":(\\d+)");
    private static final Pattern TEXT = Pattern.compile("\"delta\":\\{\"content\":\"[^\"]");

    private ServingBenchmark() {
    }

    /** The figures of one workload. */
    record Result(double tokensPerSecond, List<Double> ttft, List<Double> itl, List<Double> laterTurnsTtft, String breakdown) {
    }

    public static void main(String[] args) throws Exception {
        int[] clientCounts = Arrays.stream(System.getProperty("bench.clients", "8,32").split(",")).mapToInt(Integer::parseInt).toArray();
        if (CONVERSATION && RATE > 0) throw new IllegalArgumentException("bench.conversation runs closed loop: leave bench.rate unset");
        List<String> models = List.of(System.getProperty("bench.models", "demo,smollm2").split(","));
        String arrivals = RATE > 0 ? String.format("open loop: clients %s x %d requests arriving as a Poisson process at %.2f requests/s",
                Arrays.toString(clientCounts), REQUESTS, RATE)
                : String.format("clients %s arriving %d ms apart, %d requests each", Arrays.toString(clientCounts), SPACING_MS, REQUESTS);
        System.out.printf("machine: %d cores, load average %.2f at start; %s, %d tokens per request, %s; service JVM options: %s%n",
                Runtime.getRuntime().availableProcessors(), ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(),
                arrivals, TOKENS, CONVERSATION ? "a conversation per client, each request a turn" : DISTINCT_PROMPTS ? "a prompt of its own" : "one prompt for all",
                SERVICE_JVM.isBlank() ? "none" : SERVICE_JVM);
        for (String name : models) {
            Path model = name.equals("demo") ? Path.of("models/demo") : name.equals("smollm2") ? smolLm2Shape() : Path.of(name);
            Path data = Files.createTempDirectory("prefloop-serving-bench");
            double[] core = core(model, data.resolve("adapters")); // also writes the two adapters
            Map<String, String> env = new java.util.HashMap<>(Map.of("PREFLOOP_MODEL", model.toAbsolutePath().toString(),
                    "PREFLOOP_API_KEYS", KEY, "PREFLOOP_ROLES", "serve,web", "PREFLOOP_SERVE_RUNTIME_LORA_UPDATING", "true"));
            if (!SERVICE_JVM.isBlank()) env.put("JAVA_TOOL_OPTIONS", SERVICE_JVM); // e.g. -Dprefloop.prefill.small-tokens=0, the engine before
            try (ServiceProcess service = new ServiceProcess(data, env).start()) {
                for (String adapter : List.of("a", "b")) {
                    HttpResponse<String> loaded = post(service.port(), "/v1/load_lora_adapter",
                            "{\"lora_name\":\"bench-" + adapter + "\",\"lora_path\":\"" + data.resolve("adapters/" + adapter) + "\"}");
                    if (loaded.statusCode() != 200) throw new IllegalStateException("loading adapter " + adapter + ": " + loaded.body());
                }
                // warm-up: every version and sampling setting once, so the first workload measured pays no first-use costs
                for (int i = 0; i < 12; i++) stream(service.port(), body(i, true), null, null, new AtomicLong());
                for (int i = 0; i < 3; i++) stream(service.port(), body(i, false), null, null, new AtomicLong());
                List<Double> lone = Collections.synchronizedList(new ArrayList<>());
                HistogramScrape beforeLone = scrape(service);
                for (int i = 0; i < 5; i++) {
                    if (!CONVERSATION) {
                        stream(service.port(), body(DISTINCT_PROMPTS ? 100_000 + i : 0, false), lone, null, new AtomicLong());
                        continue;
                    }
                    List<String> turns = new ArrayList<>(List.of("lone conversation " + i + ": " + PROMPT)); // a lone request is a second turn here
                    turns.add(stream(service.port(), body(i, i, false, turns), null, null, new AtomicLong()));
                    turns.add("turn 1: and again, " + PROMPT);
                    stream(service.port(), body(i, i, false, turns), lone, null, new AtomicLong());
                }
                String loneBreakdown = scrape(service).breakdownSince(beforeLone);
                Collections.sort(lone);
                double loneTtft = pct(lone, 0.5);
                System.out.printf("%s:%n  model core: 1 stream %.1f tokens/s, batch of %d %.1f tokens/s; lone request%s on the idle service: TTFT %.0f ms%n",
                        model.getFileName(), core[0], CORE_BATCH, core[1], CONVERSATION ? " (a conversation's second turn)" : "", loneTtft);
                System.out.printf("      lone TTFT breakdown: %s%n", loneBreakdown);
                if (RATE > 0) System.out.printf("  offered load: %.2f of the core's batch-of-%d rate%n", RATE * TOKENS / core[1], CORE_BATCH);
                for (int clients : clientCounts) {
                    Result uniform = load(service, clients, false);
                    Result mixed = load(service, clients, true);
                    String who = RATE > 0 ? String.format("%3d requests", clients * REQUESTS) : String.format("%2d clients", clients);
                    for (Result r : List.of(uniform, mixed)) {
                        System.out.printf("  %s, %-7s: %6.1f tokens/s (%.2f of core batch of %d), TTFT p50 %5.0f ms p99 %5.0f ms (p99 %.2f of lone),"
                                        + " ITL p50 %4.0f ms p99 %4.0f ms%n",
                                who, r == uniform ? "uniform" : "mixed", r.tokensPerSecond, r.tokensPerSecond / core[1], CORE_BATCH,
                                pct(r.ttft, .5), pct(r.ttft, .99), pct(r.ttft, .99) / loneTtft, pct(r.itl, .5), pct(r.itl, .99));
                        if (CONVERSATION) System.out.printf("      turns after the first: TTFT p50 %5.0f ms p99 %5.0f ms (p50 %.2f of lone)%n",
                                pct(r.laterTurnsTtft, .5), pct(r.laterTurnsTtft, .99), pct(r.laterTurnsTtft, .5) / loneTtft);
                        System.out.printf("      TTFT breakdown: %s%n", r.breakdown);
                    }
                    System.out.printf("  %s: mixed / uniform tokens/s %.2f%n", who, mixed.tokensPerSecond / uniform.tokensPerSecond);
                }
            }
        }
        System.exit(0); // the HTTP clients' threads would keep the JVM alive
    }

    /**
     * The SmolLM2-135M-shaped checkpoint (random weights), written once under target/. Its
     * tokenizer gives every one of the 49,152 ids a character of its own (the prompt's ASCII, then
     * letters and symbols from U+00C0 on): a random model picks ids all over the vocabulary, and
     * with ids that decode to nothing a stream would send no text to time.
     */
    static Path smolLm2Shape() {
        Path dir = Path.of("target/bench-smollm2-135m-text");
        if (!Files.exists(dir.resolve("model.safetensors"))) {
            int vocab = 49152;
            StringBuilder alphabet = new StringBuilder("abcdefghijklmnopqrstuvwxyz0123456789 .,\n");
            int wanted = vocab - TokenizerSpec.SPECIAL_TOKENS.size();
            for (int cp = 0xC0; alphabet.codePointCount(0, alphabet.length()) < wanted; cp++) {
                if (Character.isLetter(cp) || Character.getType(cp) == Character.OTHER_SYMBOL) alphabet.appendCodePoint(cp);
            }
            TinyCheckpoint.write(dir, new ModelConfig("llama", vocab, 576, 1536, 30, 9, 3, 64, 1e-5, 100000.0, null, 2048,
                    true, false, null, null, "float32", 0), 135, TokenizerSpec.characters(alphabet.toString()));
        }
        return dir;
    }

    /**
     * {single-stream, batch-of-8} decode tokens/s of the model core on the benchmark's prompt and
     * length, in this JVM; writes the two LoRA adapters of the mixed workload under {@code adapters}.
     */
    static double[] core(Path dir, Path adapters) {
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); TextTokenizer tok = TextTokenizer.load(dir)) {
            JniUtils.setGradMode(false);
            List<String> all = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
            try (LoraAdapter a = LoraAdapter.create(model, LoraAdapter.Config.of(8, 16, all, null), 1, true);
                 LoraAdapter b = LoraAdapter.create(model, LoraAdapter.Config.of(16, 32, List.of("q_proj", "v_proj"), null), 2, true)) {
                a.save(adapters.resolve("a"));
                b.save(adapters.resolve("b"));
            }
            Generator gen = new Generator(model, tok);
            long[] prompt = tok.encode(ChatTemplate.load(dir).render(List.of(new ChatTemplate.ChatMessage("user", PROMPT)), true));
            Generator.GenerationParams p = new Generator.GenerationParams(TOKENS, 1f, 1f, 0, 1f, 1L, List.of(), new long[0], 0f, 0f, true);
            gen.generate(List.of(prompt), p, null);
            long t = System.nanoTime();
            int n = gen.generate(List.of(prompt), p, null).get(0).tokenIds().length;
            double single = n / ((System.nanoTime() - t) / 1e9);
            t = System.nanoTime();
            int m = gen.generate(Collections.nCopies(CORE_BATCH, prompt), p, null).stream().mapToInt(c -> c.tokenIds().length).sum();
            return new double[]{single, m / ((System.nanoTime() - t) / 1e9)};
        }
    }

    /**
     * Clients arriving {@link #SPACING_MS} apart, each streaming {@link #REQUESTS} requests one after
     * the other; or, with {@link #RATE}, as many requests arriving as a Poisson process.
     */
    static Result load(ServiceProcess service, int clients, boolean mixed) throws Exception {
        int port = service.port();
        HistogramScrape before = scrape(service);
        List<Double> ttft = Collections.synchronizedList(new ArrayList<>());
        List<Double> itl = Collections.synchronizedList(new ArrayList<>());
        List<Double> laterTurns = Collections.synchronizedList(new ArrayList<>());
        AtomicLong generated = new AtomicLong();
        ExecutorService pool = RATE > 0 ? Executors.newCachedThreadPool() : Executors.newFixedThreadPool(clients);
        long start = System.nanoTime();
        List<Future<?>> all = new ArrayList<>();
        if (RATE > 0) {
            java.util.SplittableRandom gaps = new java.util.SplittableRandom(clients);
            long at = start;
            for (int i = 0; i < clients * REQUESTS; i++) {
                int request = i;
                long wait = at - System.nanoTime();
                if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                all.add(pool.submit(() -> {
                    stream(port, body(request, mixed), ttft, itl, generated);
                    return null;
                }));
                at += (long) (-Math.log(1 - gaps.nextDouble()) / RATE * 1e9); // exponential gaps
            }
        } else {
            for (int c = 0; c < clients; c++) {
                int client = c;
                all.add(pool.submit(() -> {
                    Thread.sleep((long) client * SPACING_MS);
                    List<String> conversation = new ArrayList<>(); // user and assistant messages, alternating
                    for (int r = 0; r < REQUESTS; r++) {
                        int request = client * REQUESTS + r;
                        if (!CONVERSATION) {
                            stream(port, body(request, mixed), ttft, itl, generated);
                            continue;
                        }
                        conversation.add(r == 0 ? "conversation " + client + ": " + PROMPT : "turn " + r + ": and again, " + PROMPT);
                        List<Double> first = new ArrayList<>(1);
                        conversation.add(stream(port, body(request, client, mixed, conversation), first, itl, generated));
                        ttft.addAll(first);
                        if (r > 0) laterTurns.addAll(first);
                    }
                    return null;
                }));
            }
        }
        for (Future<?> f : all) f.get();
        double seconds = (System.nanoTime() - start) / 1e9;
        pool.shutdown();
        Collections.sort(ttft);
        Collections.sort(itl);
        Collections.sort(laterTurns);
        return new Result(generated.get() / seconds, ttft, itl, laterTurns, scrape(service).breakdownSince(before));
    }

    /** The service's serving histograms now (the engine's breakdown of time to first token, {@code FirstTokenMeters}). */
    static HistogramScrape scrape(ServiceProcess service) throws Exception {
        return HistogramScrape.parse(service.management("/q/metrics").body(), "prefloop_serve_");
    }

    /**
     * Request {@code i}'s body. Uniform: adapter a at temperature 1. Mixed: the versions (base,
     * adapter a, adapter b) and four sampling settings cycle independently (3 and 4 are coprime),
     * so every pair of them occurs.
     */
    static String body(int i, boolean mixed) {
        return body(i, i, mixed, List.of((DISTINCT_PROMPTS ? "request " + i + ": " : "") + PROMPT));
    }

    /**
     * Request {@code i}'s body with these messages, user and assistant alternating from a user's;
     * when mixed, its version is the one {@code version} picks (a conversation keeps its own).
     */
    static String body(int i, int version, boolean mixed, List<String> messages) {
        String model = "bench-a";
        String sampling = "\"temperature\":1.0";
        if (mixed) {
            model = switch (version % 3) {
                case 0 -> "prefloop";
                case 1 -> "bench-a";
                default -> "bench-b";
            };
            sampling = switch (i % 4) {
                case 0 -> "\"temperature\":0";
                case 1 -> "\"temperature\":0.8,\"top_p\":0.9,\"top_k\":40,\"seed\":" + i;
                case 2 -> "\"temperature\":1.2,\"repetition_penalty\":1.1,\"frequency_penalty\":0.3,\"presence_penalty\":0.1,\"seed\":" + i;
                default -> "\"temperature\":0,\"repetition_penalty\":1.3";
            };
        }
        return "{\"model\":\"" + model + "\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":" + TOKENS
                + ",\"ignore_eos\":true," + sampling + ",\"messages\":" + messagesJson(messages) + "}";
    }

    private static String messagesJson(List<String> contents) {
        List<Map<String, String>> messages = new ArrayList<>();
        for (int k = 0; k < contents.size(); k++) messages.add(Map.of("role", k % 2 == 0 ? "user" : "assistant", "content", contents.get(k)));
        try {
            return JSON.writeValueAsString(messages);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    /**
     * One streaming request: its time to first text chunk, the gaps between text chunks, and its
     * usage's completion tokens; returns the reply's text when {@link #CONVERSATION} (else "").
     */
    static String stream(int port, String body, List<Double> ttft, List<Double> itl, AtomicLong generated) throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
                .header("Authorization", "Bearer " + KEY).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        long start = System.nanoTime();
        HttpResponse<java.io.InputStream> res = HTTP.send(req, HttpResponse.BodyHandlers.ofInputStream());
        if (res.statusCode() != 200) throw new IllegalStateException("HTTP " + res.statusCode() + ": " + new String(res.body().readAllBytes(), StandardCharsets.UTF_8));
        long last = 0;
        StringBuilder reply = new StringBuilder();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(res.body(), StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) {
                if (!line.startsWith("data:")) continue;
                if (TEXT.matcher(line).find()) {
                    long now = System.nanoTime();
                    if (last == 0) {
                        if (ttft != null) ttft.add((now - start) / 1e6);
                    } else if (itl != null) {
                        itl.add((now - last) / 1e6);
                    }
                    last = now;
                }
                Matcher m = USAGE.matcher(line);
                if (m.find()) generated.addAndGet(Long.parseLong(m.group(1)));
                if (CONVERSATION && !line.contains("[DONE]")) {
                    JsonNode choices = JSON.readTree(line.substring(5)).path("choices");
                    if (!choices.isEmpty()) reply.append(choices.get(0).path("delta").path("content").asText(""));
                }
            }
        }
        return reply.toString();
    }

    static HttpResponse<String> post(int port, String path, String json) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).header("Authorization", "Bearer " + KEY)
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static double pct(List<Double> sorted, double p) {
        return sorted.isEmpty() ? Double.NaN : sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(p * sorted.size()) - 1));
    }
}
