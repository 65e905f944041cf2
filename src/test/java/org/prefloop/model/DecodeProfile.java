package org.prefloop.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import ai.djl.pytorch.jni.JniUtils;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;

/**
 * Where one single-stream decode step's time goes, on the SmolLM2-135M shape of {@link ModelBenchmark}:
 * the whole step, the 7 projections of every layer plus the LM head alone (the matrix-vector
 * products a step cannot avoid), on one and on two threads, the step with its large products on two
 * threads ({@link WideMatmul}) against all on one, and the cost of one small engine call.
 * Not a test; run with
 * {@code ./mvnw -B -q -Pbench -DskipNpm package -DskipTests -Dbench.main=org.prefloop.model.DecodeProfile}.
 */
public final class DecodeProfile {
    static final int PROMPT = 128;
    static final int STEPS = 32;
    static final int REPEATS = 4;

    private DecodeProfile() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = BenchCheckpoint.smolLm2(args.length > 0 ? Path.of(args[0]) : BenchCheckpoint.SMOLLM2_DIR);
        ModelConfig config = BenchCheckpoint.SMOLLM2;
        System.out.printf("load average %.2f at start%n", load());
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); NDManager m = model.manager().newSubManager()) {
            JniUtils.setGradMode(false);
            int threads = JniUtils.getNumThreads();
            double[] step = new double[2];
            double[] matmuls1 = new double[2];
            double[] matmuls2 = new double[2];
            double[] tiny = new double[2];
            double[] indexed = new double[2];
            double[] built = new double[2];
            java.util.Arrays.fill(step, Double.MAX_VALUE);
            java.util.Arrays.fill(matmuls1, Double.MAX_VALUE);
            java.util.Arrays.fill(matmuls2, Double.MAX_VALUE);
            java.util.Arrays.fill(tiny, Double.MAX_VALUE);
            java.util.Arrays.fill(indexed, Double.MAX_VALUE);
            java.util.Arrays.fill(built, Double.MAX_VALUE);
            for (int rep = 0; rep < REPEATS; rep++) {
                JniUtils.setNumThreads(1);
                model.setDecodeMatmulThreads(1);
                step[0] = Math.min(step[0], decodeStepMillis(model, m));
                model.setDecodeMatmulThreads(2);
                step[1] = Math.min(step[1], decodeStepMillis(model, m));
                model.setDecodeMatmulThreads(1);
                matmuls1[0] = Math.min(matmuls1[0], matmulMillis(model, m));
                tiny[0] = Math.min(tiny[0], tinyCallMicros(m));
                indexed[0] = Math.min(indexed[0], indexedGetMicros(m, false));
                built[0] = Math.min(built[0], indexedGetMicros(m, true));
                JniUtils.setNumThreads(2);
                matmuls2[0] = Math.min(matmuls2[0], matmulMillis(model, m));
                JniUtils.setNumThreads(threads);
                System.out.printf("repeat %d, load average %.2f%n", rep, load());
            }
            System.out.printf("decode step, 1 thread:                %7.2f ms (%.1f tokens/s)%n", step[0], 1000 / step[0]);
            System.out.printf("decode step, 1 thread, large products on 2: %7.2f ms (%.1f tokens/s); ratio to 1 thread %.2fx%n", step[1], 1000 / step[1], step[0] / step[1]);
            System.out.printf("7x30 projections + LM head, 1 thread: %7.2f ms%n", matmuls1[0]);
            System.out.printf("7x30 projections + LM head, 2 threads:%7.2f ms%n", matmuls2[0]);
            System.out.printf("one small engine call (add of 576 floats, in a scope): %.2f us%n", tiny[0]);
            System.out.printf("one NDIndex-string get (\":, :, :{}\" on a [1,3,161,64] array): %.2f us%n", indexed[0]);
            System.out.printf("the same get through a built NDIndex (as KvCache.store now does): %.2f us%n", built[0]);
            System.out.printf("step minus matmuls (1 thread): %.2f ms = %.0f small calls' worth%n",
                    step[0] - matmuls1[0], (step[0] - matmuls1[0]) * 1000 / tiny[0]);
        }
        System.out.printf("load average %.2f at end%n", load());
    }

    private static double load() {
        return ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
    }

    /** Mean milliseconds of one decode step of one stream after a {@link #PROMPT}-token prefill. */
    static double decodeStepMillis(LlamaModel model, NDManager m) {
        long[] prompt = new long[PROMPT];
        for (int i = 0; i < PROMPT; i++) prompt[i] = i % 40;
        try (KvCache cache = model.newCache(1, PROMPT + STEPS + 1)) {
            long next;
            try (NDScope scope = new NDScope()) {
                NDArray h = model.hidden(m.create(new long[][] {prompt}), null, cache);
                next = model.logits(h.get(new NDIndex(":, -1:, :"))).reshape(1, -1).argMax(1).toLongArray()[0];
            }
            long t0 = System.nanoTime();
            for (int i = 0; i < STEPS; i++) {
                try (NDScope scope = new NDScope()) {
                    NDArray h = model.hidden(m.create(new long[] {next}, new Shape(1, 1)), null, cache);
                    next = model.logits(h).reshape(1, -1).argMax(1).toLongArray()[0];
                }
            }
            return (System.nanoTime() - t0) / 1e6 / STEPS;
        }
    }

    /** Milliseconds of the matrix-vector products of one decode step alone: every projection and the LM head. */
    static double matmulMillis(LlamaModel model, NDManager m) {
        ModelConfig c = model.config();
        String[] modules = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
        try (NDScope scope = new NDScope()) {
            NDArray x = m.randomNormal(new Shape(1, 1, c.hiddenSize()));
            NDArray wide = m.randomNormal(new Shape(1, 1, c.intermediateSize()));
            NDArray head = model.parameters().get("model.embed_tokens.weight");
            long t0 = System.nanoTime();
            for (int i = 0; i < STEPS; i++) {
                try (NDScope inner = new NDScope()) {
                    NDArray sum = null;
                    for (int l = 0; l < c.numHiddenLayers(); l++) {
                        for (String mod : modules) {
                            NDArray w = model.parameters().get("model.layers." + l + "." + mod + ".weight");
                            NDArray in = w.getShape().get(1) == c.hiddenSize() ? x : wide;
                            sum = Linear.linear(in, w, null).singletonOrThrow();
                        }
                    }
                    Linear.linear(x, head, null).singletonOrThrow().argMax(-1).toLongArray();
                    sum.getFloat(0, 0, 0);
                }
            }
            return (System.nanoTime() - t0) / 1e6 / STEPS;
        }
    }

    /** Microseconds of one tiny engine call inside a scope: the fixed cost every operation pays. */
    static double tinyCallMicros(NDManager m) {
        int n = 5000;
        try (NDScope scope = new NDScope()) {
            NDArray a = m.randomNormal(new Shape(1, 1, 576));
            NDArray b = m.randomNormal(new Shape(1, 1, 576));
            long t0 = System.nanoTime();
            try (NDScope inner = new NDScope()) {
                for (int i = 0; i < n; i++) a.add(b);
            }
            return (System.nanoTime() - t0) / 1e3 / n;
        }
    }

    /** Microseconds of one slice through a parsed NDIndex string (as KvCache.store did per layer) or a built one. */
    static double indexedGetMicros(NDManager m, boolean builtIndex) {
        int n = 2000;
        try (NDScope scope = new NDScope()) {
            NDArray a = m.zeros(new Shape(1, 3, 161, 64));
            long t0 = System.nanoTime();
            try (NDScope inner = new NDScope()) {
                for (int i = 0; i < n; i++) {
                    int upTo = 129 + (i & 15);
                    a.get(builtIndex ? new NDIndex().addSliceDim(0, 1).addAllDim().addSliceDim(0, upTo) : new NDIndex(":, :, :{}", upTo));
                }
            }
            return (System.nanoTime() - t0) / 1e3 / n;
        }
    }
}
