package org.prefloop.bench;

import ai.djl.Device;
import ai.djl.pytorch.jni.JniUtils;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Serving under load: N concurrent streaming clients against {@code /v1/chat/completions} of the
 * packaged service, on the bundled demo model and on a SmolLM2-135M-shaped one; total generated
 * tokens/s (the usage counts of the responses) and time to first token p50/p99 (the first chunk
 * after the role announcement; a token whose text is empty sends no chunk, so for the random
 * model the figure can include a few tokens), against the model core's own single-stream and
 * batch decode speed measured in the same run. Not a test; run with
 * {@code ./mvnw -B -q -Pbench -DskipNpm package -DskipTests -Dbench.main=org.prefloop.bench.ServingBenchmark}
 * (options: {@code -Dbench.jvm.args="-Dbench.clients=8 -Dbench.requests=3 -Dbench.tokens=32"}).
 */
public final class ServingBenchmark {
    static final String KEY = "bench-key-0123456789abcdef";

    private ServingBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int clients = Integer.getInteger("bench.clients", 8);
        int requests = Integer.getInteger("bench.requests", 3);
        int tokens = Integer.getInteger("bench.tokens", 32);
        System.out.printf("machine: %d cores, load average %.2f at start; %d streaming clients x %d requests x %d tokens%n",
                Runtime.getRuntime().availableProcessors(), ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(),
                clients, requests, tokens);
        Path realistic = Path.of("target/bench-smollm2-135m");
        if (!Files.exists(realistic.resolve("model.safetensors"))) {
            TinyCheckpoint.write(realistic, new ModelConfig("llama", 49152, 576, 1536, 30, 9, 3, 64, 1e-5, 100000.0, null, 2048,
                    true, false, null, null, "float32", 0), 135, TokenizerSpec.characters("abcdefghijklmnopqrstuvwxyz0123456789 .,\n"));
        }
        for (Path model : List.of(Path.of("models/demo"), realistic)) {
            double[] core = core(model, clients, tokens);
            Path data = Files.createTempDirectory("prefloop-serving-bench");
            try (ServiceProcess service = new ServiceProcess(data, Map.of("PREFLOOP_MODEL", model.toAbsolutePath().toString(),
                    "PREFLOOP_API_KEYS", KEY, "PREFLOOP_ROLES", "serve,web")).start()) {
                load(service.port(), 1, 1, tokens); // warm-up
                long start = System.nanoTime();
                List<Double> ttft = Collections.synchronizedList(new ArrayList<>());
                AtomicLong generated = new AtomicLong();
                ExecutorService pool = Executors.newFixedThreadPool(clients);
                List<Future<?>> all = new ArrayList<>();
                for (int c = 0; c < clients; c++) {
                    int client = c;
                    all.add(pool.submit(() -> {
                        for (int r = 0; r < requests; r++) stream(service.port(), tokens, client * 100 + r, ttft, generated);
                        return null;
                    }));
                }
                for (Future<?> f : all) f.get();
                pool.shutdown();
                double seconds = (System.nanoTime() - start) / 1e9;
                Collections.sort(ttft);
                double served = generated.get() / seconds;
                System.out.printf("%s:%n", model.getFileName());
                System.out.printf("  service, %d streaming clients: %.1f tokens/s, time to first token p50 %.0f ms, p99 %.0f ms%n",
                        clients, served, pct(ttft, 0.50), pct(ttft, 0.99));
                System.out.printf("  baseline model core, 1 stream: %.1f tokens/s (service/core %.2f)%n", core[0], served / core[0]);
                System.out.printf("  baseline model core, batch of %d: %.1f tokens/s (service/core %.2f)%n", clients, core[1], served / core[1]);
            }
        }
    }

    /** {single-stream, batch} decode tokens/s of the model core on the same prompt, in this JVM. */
    static double[] core(Path dir, int batch, int tokens) {
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); TextTokenizer tok = TextTokenizer.load(dir)) {
            JniUtils.setGradMode(false);
            Generator gen = new Generator(model, tok);
            long[] prompt = tok.encode(ChatTemplate.load(dir).render(List.of(new ChatTemplate.ChatMessage("user", "reverse: abcde")), true));
            Generator.GenerationParams p = new Generator.GenerationParams(tokens, 1f, 1f, 0, 1f, 1L, List.of(), new long[0]);
            gen.generate(List.of(prompt), p, null);
            long t = System.nanoTime();
            int n = gen.generate(List.of(prompt), p, null).get(0).tokenIds().length;
            double single = n / ((System.nanoTime() - t) / 1e9);
            List<long[]> prompts = Collections.nCopies(batch, prompt);
            t = System.nanoTime();
            int m = gen.generate(prompts, p, null).stream().mapToInt(c -> c.tokenIds().length).sum();
            return new double[]{single, m / ((System.nanoTime() - t) / 1e9)};
        }
    }

    static void load(int port, int clients, int requests, int tokens) throws Exception {
        for (int i = 0; i < clients * requests; i++) stream(port, tokens, i, new ArrayList<>(), new AtomicLong());
    }

    /** One streaming request (no seed, as the earlier figures were measured; seeded requests share decode steps too now); records its time to first token and counts its content chunks (one per token). */
    static void stream(int port, int tokens, int seed, List<Double> ttft, AtomicLong generated) throws Exception {
        String body = "{\"model\":\"prefloop\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":" + tokens + ",\"temperature\":1.0"
                + ",\"messages\":[{\"role\":\"user\",\"content\":\"reverse: abcde\"}]}";
        HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
                .header("Authorization", "Bearer " + KEY).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        long start = System.nanoTime();
        HttpResponse<java.io.InputStream> res = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofInputStream());
        if (res.statusCode() != 200) throw new IllegalStateException("HTTP " + res.statusCode());
        int dataLines = 0;
        java.util.regex.Pattern usage = java.util.regex.Pattern.compile("\"completion_tokens\":(\\d+)");
        try (BufferedReader in = new BufferedReader(new InputStreamReader(res.body()))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (!line.startsWith("data:")) continue;
                // the first data line announces the role before generation starts; the next one carries the first token
                if (++dataLines == 2) ttft.add((System.nanoTime() - start) / 1e6);
                var m = usage.matcher(line);
                if (m.find()) generated.addAndGet(Long.parseLong(m.group(1)));
            }
        }
    }

    static double pct(List<Double> sorted, double p) {
        return sorted.isEmpty() ? Double.NaN : sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(p * sorted.size()) - 1));
    }
}
