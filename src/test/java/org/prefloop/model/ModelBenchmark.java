package org.prefloop.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import com.github.tjake.jlama.model.AbstractModel;
import com.github.tjake.jlama.model.ModelSupport;
import com.github.tjake.jlama.safetensors.DType;
import com.github.tjake.jlama.tensor.AbstractTensor;
import com.github.tjake.jlama.tensor.KvBufferCache;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.UUID;

/**
 * Inference speed of PrefLoop's DJL model against Jlama on the same checkpoint in the same run:
 * prefill tokens/s, decode tokens/s for one stream and for 8 streams, and decode speed as a
 * fraction of the memory-bandwidth limit. Not a test; run with
 * {@code ./mvnw -B -q -Pbench -DskipNpm package -DskipTests -Dbench.main=org.prefloop.model.ModelBenchmark}.
 *
 * <p>The checkpoint has SmolLM2-135M's shape (hidden 576, intermediate 1536, 30 layers, 9 heads,
 * 3 KV heads, vocab 49152, tied embeddings, rope theta 100000) with random float32 weights from
 * TinyCheckpoint. Both engines run float32 weights with greedy picks; each figure is the best of
 * {@link #REPEATS} runs, since the machine is shared. Jlama runs its products on max(2, cores / 2)
 * threads; PrefLoop's decode rows run on {@link Generator#DEFAULT_DECODE_THREADS}, and a last row
 * runs the large products on {@link #WIDE_THREADS} ({@link WideMatmul}) with the rest on one.
 */
public final class ModelBenchmark {
    static final int PROMPT = 128;
    static final int DECODE = 32;
    static final int BATCH = 8;
    static final int REPEATS = 2;
    static final int WIDE_THREADS = 2;

    private ModelBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = BenchCheckpoint.smolLm2(args.length > 0 ? Path.of(args[0]) : BenchCheckpoint.SMOLLM2_DIR);
        System.out.printf("machine: %d cores, load average %.2f at start%n",
                Runtime.getRuntime().availableProcessors(), ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
        long[][] prompts = new long[BATCH][PROMPT];
        SplittableRandom r = new SplittableRandom(1);
        for (long[] p : prompts) for (int i = 0; i < PROMPT; i++) p[i] = r.nextInt(40);

        double bandwidth = copyBandwidth();
        long weightBytes;
        double[] ours = new double[3];
        double[] oursAllThreads = new double[3];
        double[] oursWide = new double[3];
        double[] jlama = new double[3];
        int engineThreads;
        AbstractModel jlamaModel = ModelSupport.loadModel(dir.toFile(), DType.F32, DType.F32);
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu())) {
            JniUtils.setGradMode(false);
            weightBytes = model.parameters().values().stream().mapToLong(a -> a.size() * 4).sum();
            engineThreads = JniUtils.getNumThreads();
            // the engines take turns within each round, so a change in the machine's load hits both alike
            for (int rep = 0; rep < REPEATS + 1; rep++) {
                double[][] round = {
                    runOurs(model, new long[][] {prompts[0]}, Generator.DEFAULT_DECODE_THREADS),
                    runOurs(model, prompts, Generator.DEFAULT_DECODE_THREADS),
                    runJlama(jlamaModel, new long[][] {prompts[0]}),
                    runJlama(jlamaModel, prompts),
                    runOurs(model, new long[][] {prompts[0]}, engineThreads),
                    runOurs(model, prompts, engineThreads),
                    runWide(model, new long[][] {prompts[0]}),
                    runWide(model, prompts)};
                if (rep == 0) continue; // warm-up
                best(ours, round[0], round[1]);
                best(jlama, round[2], round[3]);
                best(oursAllThreads, round[4], round[5]);
                best(oursWide, round[6], round[7]);
                System.out.printf("round %d decode 1 stream: PrefLoop %.1f, Jlama %.1f tokens/s (%.2fx); large products on %d threads %.1f%n",
                        rep, round[0][1], round[2][1], round[0][1] / round[2][1], WIDE_THREADS, round[6][1]);
                System.out.printf("round %d done, load average %.2f%n", rep, ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
            }
        } finally {
            jlamaModel.close();
        }
        System.out.printf("%nweights: %.1f MB float32; copy bandwidth %.1f GB/s (read+write, best of %d)%n",
                weightBytes / 1e6, bandwidth / 1e9, REPEATS);
        System.out.printf("%-28s %12s %12s %8s%n", "tokens/s", "PrefLoop", "Jlama", "ratio");
        String[] names = {"prefill (" + PROMPT + " tokens)", "decode, 1 stream", "decode, " + BATCH + " streams"};
        for (int i = 0; i < 3; i++) {
            System.out.printf("%-28s %12.1f %12.1f %7.2fx%n", names[i], ours[i], jlama[i], ours[i] / jlama[i]);
        }
        System.out.printf("PrefLoop decoding on %d threads instead of %d: 1 stream %.1f tokens/s, %d streams %.1f tokens/s%n",
                engineThreads, Generator.DEFAULT_DECODE_THREADS, oursAllThreads[1], BATCH, oursAllThreads[2]);
        System.out.printf("PrefLoop decoding with the large products on %d threads (WideMatmul): 1 stream %.1f tokens/s (%.2fx Jlama), %d streams %.1f tokens/s%n",
                WIDE_THREADS, oursWide[1], oursWide[1] / jlama[1], BATCH, oursWide[2]);
        // one decode step of one stream reads every weight once (the tied embedding serves as the LM head)
        double limit = bandwidth / weightBytes;
        System.out.printf("memory-bandwidth limit for 1 stream: %.1f tokens/s; PrefLoop at %.0f%%, Jlama at %.0f%%%n",
                limit, 100 * ours[1] / limit, 100 * jlama[1] / limit);
        System.out.printf("load average at end %.2f%n", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    }

    /** Keeps the best {prefill, decode 1 stream, decode BATCH streams} tokens/s seen. */
    private static void best(double[] into, double[] single, double[] batch) {
        into[0] = Math.max(into[0], single[0]);
        into[1] = Math.max(into[1], single[1]);
        into[2] = Math.max(into[2], batch[1]);
    }

    /** The Generator's inner loop without text decoding: prefill into the cache, then greedy steps. */
    private static double[] runOurs(LlamaModel model, long[][] prompts, int decodeThreads) {
        int b = prompts.length;
        int threads = JniUtils.getNumThreads();
        try (NDManager m = model.manager().newSubManager(); KvCache cache = model.newCache(b, PROMPT + DECODE + 1)) {
            long t0 = System.nanoTime();
            long[] next;
            try (NDScope scope = new NDScope()) {
                NDArray h = model.hidden(m.create(prompts), null, cache);
                next = model.logits(h.get(new NDIndex(":, -1:, :"))).reshape(b, -1).argMax(1).toLongArray();
            }
            long t1 = System.nanoTime();
            JniUtils.setNumThreads(decodeThreads); // as Generator does for decode steps
            for (int i = 0; i < DECODE; i++) {
                try (NDScope scope = new NDScope()) {
                    NDArray h = model.hidden(m.create(next, new Shape(b, 1)), null, cache);
                    next = model.logits(h).reshape(b, -1).argMax(1).toLongArray();
                }
            }
            long t2 = System.nanoTime();
            JniUtils.setNumThreads(threads);
            return new double[] {b * PROMPT / ((t1 - t0) / 1e9), b * DECODE / ((t2 - t1) / 1e9)};
        }
    }

    /** As {@link #runOurs} on the decode threads, with the large products on {@link #WIDE_THREADS} ({@link WideMatmul}). */
    private static double[] runWide(LlamaModel model, long[][] prompts) {
        int before = model.decodeMatmulThreads();
        model.setDecodeMatmulThreads(WIDE_THREADS);
        try {
            return runOurs(model, prompts, Generator.DEFAULT_DECODE_THREADS);
        } finally {
            model.setDecodeMatmulThreads(before);
        }
    }

    /** Jlama decodes one sequence per forward call, so several streams take turns, each with its own KV buffer. */
    private static double[] runJlama(AbstractModel jlama, long[][] prompts) throws Exception {
        int b = prompts.length;
        int vocab = jlama.getConfig().vocabularySize;
        try (KvBufferCache caches = new KvBufferCache(jlama)) {
            KvBufferCache.KvBuffer[] kv = new KvBufferCache.KvBuffer[b];
            AbstractTensor logits = jlama.makeDenseTensor(vocab);
            int[] next = new int[b];
            long t0 = System.nanoTime();
            for (int s = 0; s < b; s++) {
                kv[s] = caches.getKvBuffer(UUID.randomUUID());
                int[] tokens = Arrays.stream(prompts[s]).mapToInt(x -> (int) x).toArray();
                AbstractTensor out = jlama.batchForward(tokens, 0, kv[s]);
                AbstractTensor last = out.slice(out.shape().first() - 1);
                next[s] = jlama.sample(last, 0f, 0f, logits);
                out.close();
            }
            long t1 = System.nanoTime();
            for (int i = 0; i < DECODE; i++) {
                for (int s = 0; s < b; s++) {
                    AbstractTensor out = jlama.forward(next[s], PROMPT + i, kv[s], Optional.empty());
                    next[s] = jlama.sample(out, 0f, 0f, logits);
                    out.close();
                }
            }
            long t2 = System.nanoTime();
            logits.close();
            return new double[] {b * PROMPT / ((t1 - t0) / 1e9), b * DECODE / ((t2 - t1) / 1e9)};
        }
    }

    /** Bytes moved per second (read + write) copying 256 MB, best of a few, with libtorch's clone on all threads. */
    static double copyBandwidth() {
        long n = 64L * 1024 * 1024;
        double best = 0;
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray src = m.ones(new Shape(n));
            for (int i = 0; i < REPEATS + 1; i++) {
                long t0 = System.nanoTime();
                NDArray copy = src.duplicate();
                copy.getFloat(0); // forces completion
                long t = System.nanoTime() - t0;
                copy.close();
                best = Math.max(best, 2.0 * n * 4 / (t / 1e9));
            }
            float[] a = new float[(int) n];
            float[] c = new float[(int) n];
            for (int i = 0; i < REPEATS + 1; i++) {
                long t0 = System.nanoTime();
                System.arraycopy(a, 0, c, 0, a.length);
                long t = System.nanoTime() - t0;
                best = Math.max(best, 2.0 * n * 4 / (t / 1e9));
            }
        }
        return best;
    }
}
