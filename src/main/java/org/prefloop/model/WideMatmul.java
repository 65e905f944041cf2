package org.prefloop.model;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.core.Linear;
import ai.djl.pytorch.jni.JniUtils;

/**
 * The large linear products of a decode step on more intra-op threads than the rest of the step;
 * off by default ({@code -Dprefloop.decode.matmulThreads=2} turns it on).
 *
 * <p>Decode steps run libtorch on one thread ({@link Generator#DEFAULT_DECODE_THREADS}), because
 * each of the step's many tiny ops that enters the thread pool pays for waking a worker. But most
 * of a single-stream step's time is matrix-vector products over the weights, which are bound by
 * memory bandwidth, and one core draws only part of the machine's bandwidth (the SmolLM2-135M
 * shape: the projections and LM head alone took 47-50 of a 70-75 ms step on one thread). Jlama,
 * the reference for decode speed, runs its products on max(2, cores/2) threads. So with
 * {@code threads} above 1, a product whose weight has at least {@link #MIN_WEIGHT_ELEMENTS}
 * elements raises the thread count to {@code threads} for that one call and puts it back after;
 * the small ops stay on one thread.
 *
 * <p>Why off: on the shared 2-core machine (load 6-10) it made decode slower, 1 stream 0.90x in
 * DecodeProfile and 8 streams 8.4 against 79.9 tokens/s in ModelBenchmark; a quiet machine, where
 * the second core is free, was not available to measure. ModelBenchmark prints both settings.
 *
 * <p>Nothing changes when the engine already runs at least {@code threads} threads (prefill,
 * training): the bump only applies inside a decode step that lowered the count.
 */
final class WideMatmul {
    /** Threads for a decode step's large products: {@code -Dprefloop.decode.matmulThreads=N}; 1 (the default) is off. */
    static final int DEFAULT_THREADS = Integer.getInteger("prefloop.decode.matmulThreads", 1);

    /**
     * Weights below this many elements (1 MiB of float32) run on the caller's threads: their
     * product is a few tens of microseconds, where waking a worker costs as much as it saves.
     */
    static final long MIN_WEIGHT_ELEMENTS = 1L << 18;

    private WideMatmul() {
    }

    /** {@code x Wᵀ (+ bias)}, on {@code threads} intra-op threads when the weight is large and the engine runs fewer. */
    static NDArray linear(NDArray x, NDArray weight, NDArray bias, int threads) {
        if (threads <= 1 || weight.size() < MIN_WEIGHT_ELEMENTS) return Linear.linear(x, weight, bias).singletonOrThrow();
        int current = JniUtils.getNumThreads();
        int wanted = threadsFor(weight.size(), threads, current);
        if (wanted == current) return Linear.linear(x, weight, bias).singletonOrThrow();
        JniUtils.setNumThreads(wanted);
        try {
            return Linear.linear(x, weight, bias).singletonOrThrow();
        } finally {
            JniUtils.setNumThreads(current);
        }
    }

    /** The intra-op threads a product over {@code weightElements} runs on when the engine runs {@code current}. */
    static int threadsFor(long weightElements, int threads, int current) {
        return weightElements >= MIN_WEIGHT_ELEMENTS && threads > current ? threads : current;
    }
}
