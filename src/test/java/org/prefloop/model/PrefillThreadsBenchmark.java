package org.prefloop.model;

import ai.djl.Device;
import ai.djl.pytorch.jni.JniUtils;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One prefill pass of a prompt of T tokens (no prefix cache) with libtorch's intra-op pool at 1
 * thread against all cores, alternated in one run so that load from other jobs hits both alike:
 * the figure behind {@link DecodeBatch}'s choice of threads for a pass. Prints the median of
 * {@code bench.repeats} (default 5) passes per size and setting, and their ratio. Not a test; run
 * its main with the test classpath, the model directory as argument (default the SmolLM2 shape of
 * {@link BenchCheckpoint}); {@code bench.sizes} (default "1,16,64,256") picks the prompt lengths.
 */
public final class PrefillThreadsBenchmark {
    private PrefillThreadsBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = args.length > 0 ? Path.of(args[0]) : BenchCheckpoint.SMOLLM2_DIR;
        if (dir.equals(BenchCheckpoint.SMOLLM2_DIR)) BenchCheckpoint.smolLm2(dir);
        int repeats = Integer.getInteger("bench.repeats", 5);
        int[] sizes = java.util.Arrays.stream(System.getProperty("bench.sizes", "1,16,64,256").split(",")).mapToInt(Integer::parseInt).toArray();
        ai.djl.engine.Engine.getEngine("PyTorch");
        JniUtils.setGradMode(false);
        int cores = Runtime.getRuntime().availableProcessors();
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); TextTokenizer tok = TextTokenizer.load(dir)) {
            Generator gen = new Generator(model, tok);
            SplittableRandom random = new SplittableRandom(7);
            for (int t : sizes) {
                List<Double> one = new ArrayList<>();
                List<Double> all = new ArrayList<>();
                for (int r = -1; r < repeats; r++) { // r = -1: warm-up, not counted
                    for (int threads : new int[] {1, cores}) {
                        long[] prompt = random.longs(t, 0, model.config().vocabSize()).toArray();
                        double ms = pass(gen, prompt, threads);
                        if (r >= 0) (threads == 1 ? one : all).add(ms);
                    }
                }
                Collections.sort(one);
                Collections.sort(all);
                double a = one.get(one.size() / 2);
                double b = all.get(all.size() / 2);
                System.out.printf("prompt %4d tokens: 1 thread %8.1f ms, %d threads %8.1f ms (median of %d), %d threads / 1 thread %.2f (load average %.2f)%n",
                        t, a, cores, b, repeats, cores, b / a, ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
            }
        }
    }

    /** One prefill pass's time (ms), libtorch's pool set to {@code threads}. */
    static double pass(Generator gen, long[] prompt, int threads) {
        JniUtils.setNumThreads(threads);
        double[] ms = {Double.NaN};
        try (DecodeBatch batch = gen.newBatch()) {
            batch.setSmallPrefillTokens(0); // every pass on the pool set here
            Generator.GenerationParams p = new Generator.GenerationParams(1, 0f, 1f, 0, 1f, null, List.of(), null, 0f, 0f, true);
            batch.admit(List.of(new DecodeBatch.Request(prompt, p, 0, new DecodeBatch.Listener() {
                public void onPrefilled(DecodeBatch.Prefilled f) {
                    ms[0] = (f.end() - f.start()) / 1e6;
                }

                public void onToken(long tokenId, String textDelta) {
                }

                public void onDone(Generator.Completion completion) {
                }
            })));
        }
        return ms[0];
    }
}
