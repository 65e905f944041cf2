package org.prefloop.model;

import ai.djl.Device;
import ai.djl.pytorch.jni.JniUtils;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import org.prefloop.lora.LoraAdapter;

/**
 * The batching engine under arrivals spread over time, as the service's scheduler drives it
 * (one thread; newcomers join between decode steps; at most {@code bench.maxBatch} rows, the
 * service's default 8; the service's prefix cache, {@code bench.prefixCacheMb} default 128, and
 * prefill chunk, {@code bench.prefillChunk} default 256), without HTTP: N clients arrive
 * {@code bench.spacingMs} apart, each sends {@code bench.requests} (default 1) requests one after
 * the other, each asking for {@code bench.tokens} tokens. Four workloads: base (one sampling setting, no adapter),
 * uniform (the same setting, every row on one LoRA adapter), versions (the same setting; the base
 * and two LoRA adapters of different ranks and targets in the same batches) and mixed (those
 * versions, with greedy, seeded sampling with top-p/top-k, penalties). Versions against uniform is
 * the cost of mixing versions, mixed against uniform that of mixing settings too (whose samplers
 * cost differently per row), uniform against base the cost of the adapter itself. Adapters run in serving form
 * ({@link LoraAdapter#servingHook()}), as the service loads them. Reports tokens/s, time to first
 * token p50/p99 (from arrival; p99 also as a ratio to a lone request's on the idle engine, the
 * goal of issue 12 being at most 2) and inter-token latency p50/p99, against the model core's
 * single-stream and batch-of-8 decode in the same run. Not a test; run its main with the test
 * classpath (see README § Benchmarks); {@code bench.clients} (default "8,32") picks the client counts,
 * {@code bench.repeats} (default 2) how many interleaved runs of each workload give the best figure,
 * {@code bench.workloads} (default "base,uniform,versions,mixed") which workloads run,
 * {@code bench.compareGrouped=true} adds the mixed workload on live (unstackable) adapter hooks: the
 * per-group path that any other hook takes, for a same-run comparison.
 */
public final class BatchingBenchmark {
    static final int MAX_BATCH = Integer.getInteger("bench.maxBatch", 8);
    static final int TOKENS = Integer.getInteger("bench.tokens", 24);
    static final int SPACING_MS = Integer.getInteger("bench.spacingMs", 40);
    static final int REPEATS = Integer.getInteger("bench.repeats", 2);
    static final int REQUESTS = Integer.getInteger("bench.requests", 1);
    static final long PREFIX_CACHE_MB = Long.getLong("bench.prefixCacheMb", 128);
    static final int PREFILL_CHUNK = Integer.getInteger("bench.prefillChunk", 256);
    static final int[] CLIENTS = java.util.Arrays.stream(System.getProperty("bench.clients", "8,32").split(",")).mapToInt(Integer::parseInt).toArray();

    static final boolean COMPARE_GROUPED = Boolean.getBoolean("bench.compareGrouped");

    enum Workload { BASE, UNIFORM, VERSIONS, MIXED, MIXED_GROUPED }

    static final List<Workload> WORKLOADS = java.util.Arrays.stream(System.getProperty("bench.workloads", "base,uniform,versions,mixed").split(","))
            .map(w -> Workload.valueOf(w.trim().toUpperCase(java.util.Locale.ROOT))).toList();

    private BatchingBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        System.out.printf("machine: %d cores, load average %.2f at start; arrivals %d ms apart, %d request(s) per client, %d tokens each,"
                        + " max batch %d, prefix cache %d MB, prefill chunk %d%n",
                Runtime.getRuntime().availableProcessors(), ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(),
                SPACING_MS, REQUESTS, TOKENS, MAX_BATCH, PREFIX_CACHE_MB, PREFILL_CHUNK);
        Path realistic = BenchCheckpoint.SMOLLM2_DIR;
        List<Path> models = args.length > 0 ? java.util.Arrays.stream(args).map(Path::of).toList() : List.of(Path.of("models/demo"), realistic);
        if (models.contains(realistic)) BenchCheckpoint.smolLm2(realistic); // 538 MB: only when it is run
        ai.djl.engine.Engine.getEngine("PyTorch"); // loads libtorch: the JNI calls below need it
        JniUtils.setGradMode(false);
        for (Path dir : models) {
            try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); TextTokenizer tok = TextTokenizer.load(dir)) {
                Generator gen = new Generator(model, tok);
                gen.prefixCache().setBudgetBytes(PREFIX_CACHE_MB << 20); // as the service sets it (prefloop.serve.prefix-cache-mb)
                long[] prompt = tok.encode(ChatTemplate.load(dir).render(List.of(new ChatTemplate.ChatMessage("user", "reverse: abcde")), true));
                List<String> targets = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
                try (LoraAdapter a = LoraAdapter.create(model, LoraAdapter.Config.of(8, 16, targets, null), 1, true);
                     LoraAdapter b = LoraAdapter.create(model, LoraAdapter.Config.of(16, 32, List.of("q_proj", "v_proj"), null), 2, true);
                     LowRankHook servedA = a.servingHook();
                     LowRankHook servedB = b.servingHook()) {
                    List<ProjectionHook> versions = List.of(servedA, servedB);
                    List<ProjectionHook> live = List.of(a.hook(), b.hook()); // not stackable: the per-group path
                    double[] core = core(gen, prompt);
                    System.out.printf("%s (prompt %d tokens):%n", dir.getFileName(), prompt.length);
                    System.out.printf("  model core: 1 stream %.1f tokens/s, batch of %d %.1f tokens/s%n", core[0], MAX_BATCH, core[1]);
                    for (int clients : CLIENTS) {
                        run(gen, prompt, Math.min(clients, 4), 1, Workload.MIXED, versions); // warm-up: the stacks and libtorch's paths
                        double lone = loneTtft(gen, prompt, servedA); // the idle engine, measured in this run, between the warm-up and the load
                        System.out.printf("  lone request on the idle engine (uniform's version): TTFT %.0f ms%n", lone);
                        Map<Workload, Result> results = new EnumMap<>(Workload.class);
                        for (int rep = 0; rep < REPEATS; rep++) { // interleaved, best of each: load from other jobs only slows a run down
                            for (Workload w : WORKLOADS) results.merge(w, run(gen, prompt, clients, REQUESTS, w, versions), BatchingBenchmark::best);
                            if (COMPARE_GROUPED) results.merge(Workload.MIXED_GROUPED, run(gen, prompt, clients, REQUESTS, Workload.MIXED_GROUPED, live), BatchingBenchmark::best);
                        }
                        for (Result r : results.values()) {
                            System.out.printf("  %2d clients, %-7s: %6.1f tokens/s (%.2f of core batch), TTFT p50 %5.0f ms p99 %5.0f ms (p99 %.2f of lone),"
                                            + " ITL p50 %4.0f ms p99 %4.0f ms%n",
                                    clients, r.label, r.tokensPerSecond, r.tokensPerSecond / core[1], pct(r.ttft, .5), pct(r.ttft, .99),
                                    pct(r.ttft, .99) / lone, pct(r.itl, .5), pct(r.itl, .99));
                            System.out.printf("      TTFT breakdown: %s%n", r.breakdown.format());
                        }
                        System.out.printf("  %2d clients: mixed/uniform tokens/s %s, versions/uniform %s, uniform/base %s, mixed stacked/per-group %s (load average %.2f)%n",
                                clients, ratio(results, Workload.MIXED, Workload.UNIFORM), ratio(results, Workload.VERSIONS, Workload.UNIFORM),
                                ratio(results, Workload.UNIFORM, Workload.BASE), ratio(results, Workload.MIXED, Workload.MIXED_GROUPED),
                                ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
                    }
                }
            }
        }
    }

    record Result(String label, double tokensPerSecond, List<Double> ttft, List<Double> itl, Breakdown breakdown) {
    }

    /**
     * Where time to first token went, per request (ms): {@code queue} arrival → admitted (the step or
     * prefill in progress when it arrived, and any before a row was free), {@code prefillWait}
     * admitted → its prefill pass started, {@code prefill} its pass, {@code emit} pass end → first
     * token; {@code rows} and {@code tokens} of the pass it shared; {@code steps} the decode steps' times (ms).
     */
    record Breakdown(List<Double> queue, List<Double> prefillWait, List<Double> prefill, List<Double> emit, List<Double> rows, List<Double> tokens,
                     List<Double> steps) {
        Breakdown() {
            this(new ArrayList<>(), new ArrayList<>(), new ArrayList<>(), new ArrayList<>(), new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        }

        void add(long arrival, DecodeBatch.Prefilled p, long firstToken) {
            queue.add((p.admitted() - arrival) / 1e6);
            prefillWait.add((p.start() - p.admitted()) / 1e6);
            prefill.add((p.end() - p.start()) / 1e6);
            emit.add((firstToken - p.end()) / 1e6);
            rows.add((double) p.rows());
            tokens.add((double) p.tokens());
        }

        String format() {
            for (List<Double> l : List.of(queue, prefillWait, prefill, emit, rows, tokens, steps)) Collections.sort(l);
            return String.format(java.util.Locale.ROOT, "queue %.0f/%.0f ms, prefill wait %.1f/%.1f ms, prefill %.0f/%.0f ms (rows %.0f/%.0f, tokens %.0f/%.0f),"
                            + " emit %.1f/%.1f ms; decode step %.0f/%.0f ms (p50/p99)",
                    pct(queue, .5), pct(queue, .99), pct(prefillWait, .5), pct(prefillWait, .99), pct(prefill, .5), pct(prefill, .99),
                    pct(rows, .5), pct(rows, .99), pct(tokens, .5), pct(tokens, .99), pct(emit, .5), pct(emit, .99), pct(steps, .5), pct(steps, .99));
        }
    }

    /** Tokens/s of {@code a} over {@code b}'s, "-" when either did not run. */
    static String ratio(Map<Workload, Result> results, Workload a, Workload b) {
        Result x = results.get(a);
        Result y = results.get(b);
        return x == null || y == null ? "-" : String.format(java.util.Locale.ROOT, "%.2f", x.tokensPerSecond / y.tokensPerSecond);
    }

    static Result best(Result a, Result b) {
        return a == null || b.tokensPerSecond > a.tokensPerSecond ? b : a;
    }

    static Generator.GenerationParams settings(int i, boolean mixed) {
        if (!mixed) return new Generator.GenerationParams(TOKENS, 1f, 1f, 0, 1f, null, List.of(), null, 0f, 0f, true);
        return switch (i % 4) {
            case 0 -> new Generator.GenerationParams(TOKENS, 0f, 1f, 0, 1f, null, List.of(), null, 0f, 0f, true);
            case 1 -> new Generator.GenerationParams(TOKENS, 0.8f, 0.9f, 40, 1f, (long) i, List.of(), null, 0f, 0f, true);
            case 2 -> new Generator.GenerationParams(TOKENS, 1.2f, 1f, 0, 1.1f, (long) i, List.of(), null, 0.3f, 0.1f, true);
            default -> new Generator.GenerationParams(TOKENS, 0f, 1f, 0, 1.3f, null, List.of(), null, 0f, 0f, true);
        };
    }

    /**
     * Arrivals spread over time into one continuously batched engine, driven as the scheduler drives it:
     * each client's first request arrives {@code bench.spacingMs} after the previous client's, and each
     * next one the moment its previous one is done (so clients whose requests end in the same step come
     * back together, as the serving benchmark's do).
     */
    static Result run(Generator gen, long[] prompt, int clients, int requests, Workload workload, List<ProjectionHook> adapters) {
        boolean mixed = workload == Workload.MIXED || workload == Workload.MIXED_GROUPED;
        List<Double> ttft = new ArrayList<>();
        List<Double> itl = new ArrayList<>();
        Breakdown breakdown = new Breakdown();
        long[] tokens = {0};
        int[] done = {0};
        int[] sent = new int[clients];
        long start = System.nanoTime();
        java.util.PriorityQueue<long[]> arrivals = new java.util.PriorityQueue<>(java.util.Comparator.comparingLong(a -> a[0])); // {time, client}
        for (int c = 0; c < clients; c++) arrivals.add(new long[] {start + c * SPACING_MS * 1_000_000L, c});
        try (DecodeBatch batch = gen.newBatch()) {
            batch.setPrefillChunk(PREFILL_CHUNK);
            while (done[0] < clients * requests) {
                for (int pass = 0; pass < 2; pass++) { // as the scheduler does: those that arrive during a prefill are prefilled before the step
                    long now = System.nanoTime();
                    List<DecodeBatch.Request> join = new ArrayList<>();
                    while (!arrivals.isEmpty() && arrivals.peek()[0] <= now && batch.size() + join.size() < MAX_BATCH) {
                        long[] arrival = arrivals.poll();
                        int c = (int) arrival[1];
                        sent[c]++;
                        ProjectionHook adapter = switch (workload) {
                            case BASE -> null;
                            case UNIFORM -> adapters.get(0);
                            case VERSIONS, MIXED, MIXED_GROUPED -> c % 3 == 0 ? null : adapters.get(c % 3 - 1);
                        };
                        join.add(new DecodeBatch.Request(prompt, settings(c, mixed), 0, new DecodeBatch.Listener() {
                            long last;
                            DecodeBatch.Prefilled prefilled;

                            public void onPrefilled(DecodeBatch.Prefilled p) {
                                prefilled = p;
                            }

                            public void onToken(long tokenId, String textDelta) {
                                long t = System.nanoTime();
                                if (last == 0) {
                                    ttft.add((t - arrival[0]) / 1e6);
                                    breakdown.add(arrival[0], prefilled, t);
                                } else {
                                    itl.add((t - last) / 1e6);
                                }
                                last = t;
                                tokens[0]++;
                            }

                            public void onDone(Generator.Completion completion) {
                                done[0]++;
                                if (sent[c] < requests) arrivals.add(new long[] {System.nanoTime(), c});
                            }
                        }, adapter));
                    }
                    if (join.isEmpty()) break;
                    batch.admit(join);
                    if (batch.isEmpty()) break;
                }
                if (!batch.isEmpty()) {
                    long t = System.nanoTime();
                    batch.step();
                    breakdown.steps().add((System.nanoTime() - t) / 1e6);
                } else if (!arrivals.isEmpty()) {
                    sleepUntil(arrivals.peek()[0]);
                }
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        Collections.sort(ttft);
        Collections.sort(itl);
        return new Result(workload.name().toLowerCase(java.util.Locale.ROOT), tokens[0] / seconds, ttft, itl, breakdown);
    }

    /** A lone request's time to first token on the idle engine (the median of five, as ServingBenchmark takes it; the prefix cache as warm as under load). */
    static double loneTtft(Generator gen, long[] prompt, ProjectionHook adapter) {
        List<Double> times = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            long[] first = {0};
            long t = System.nanoTime();
            try (DecodeBatch batch = gen.newBatch()) {
                batch.setPrefillChunk(PREFILL_CHUNK);
                batch.admit(List.of(new DecodeBatch.Request(prompt, settings(0, false), 0, new DecodeBatch.Listener() {
                    public void onToken(long tokenId, String textDelta) {
                        if (first[0] == 0) first[0] = System.nanoTime();
                    }

                    public void onDone(Generator.Completion completion) {
                    }
                }, adapter)));
                while (first[0] == 0 && !batch.isEmpty()) batch.step();
            }
            times.add((first[0] - t) / 1e6);
        }
        Collections.sort(times);
        return pct(times, .5);
    }

    /** {single-stream, batch} decode tokens/s of the model core, fixed length, same prompt. */
    static double[] core(Generator gen, long[] prompt) {
        Generator.GenerationParams p = new Generator.GenerationParams(TOKENS, 1f, 1f, 0, 1f, 1L, List.of(), null, 0f, 0f, true);
        gen.generate(List.of(prompt), p, null);
        long t = System.nanoTime();
        int n = gen.generate(List.of(prompt), p, null).get(0).tokenIds().length;
        double single = n / ((System.nanoTime() - t) / 1e9);
        t = System.nanoTime();
        int m = gen.generate(Collections.nCopies(MAX_BATCH, prompt), p, null).stream().mapToInt(c -> c.tokenIds().length).sum();
        return new double[] {single, m / ((System.nanoTime() - t) / 1e9)};
    }

    static void sleepUntil(long nanos) {
        long wait = nanos - System.nanoTime();
        if (wait > 0) {
            try {
                Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    static double pct(List<Double> sorted, double p) {
        return sorted.isEmpty() ? Double.NaN : sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(p * sorted.size()) - 1));
    }
}
