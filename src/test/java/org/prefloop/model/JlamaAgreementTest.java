package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.github.tjake.jlama.model.AbstractModel;
import com.github.tjake.jlama.model.ModelSupport;
import com.github.tjake.jlama.safetensors.DType;
import com.github.tjake.jlama.tensor.AbstractTensor;
import com.github.tjake.jlama.tensor.KvBufferCache;
import java.nio.file.Path;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Agreement with an implementation we did not write: Jlama (com.github.tjake:jlama-core 0.8.4)
 * loads the same checkpoint directory (config.json, model.safetensors, tokenizer.json) and runs
 * its own forward pass and KV cache. Jlama's {@code getLogits} returns softmax probabilities, so
 * log-probabilities are compared. It runs on this JDK with {@code --add-modules jdk.incubator.vector}
 * and needs no {@code --enable-preview}.
 */
class JlamaAgreementTest {
    static final double LOG_PROB_TOLERANCE = 1e-4;

    @TempDir
    Path tmp;

    private Path checkpoint() {
        ModelConfig config = ModelConfig.llama(LlamaModelTest.CHARS.characterVocabSize(), 64, 128, 3, 4, 2)
                .withTiedEmbeddings(false).withRmsNormEps(1e-5).withRope(10000.0, null);
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), config, 7, LlamaModelTest.CHARS);
        LlamaModelTest.randomizeNormsAndBiases(dir, 3); // sharp attention, so positions and masks matter
        return dir;
    }

    @Test
    void logProbabilitiesMatchJlamaAtEveryPosition() {
        Path dir = checkpoint();
        long[] ids = {3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 30, 2, 41, 0, 17};
        AbstractModel jlama = ModelSupport.loadModel(dir.toFile(), DType.F32, DType.F32);
        try (KvBufferCache caches = new KvBufferCache(jlama); LlamaModel model = LlamaModel.load(dir, Device.cpu());
             NDManager m = NDManager.newBaseManager()) {
            KvBufferCache.KvBuffer kv = caches.getKvBuffer(UUID.randomUUID());
            float[] ours = model.logits(model.hidden(m.create(new long[][] {ids}), null, null)).toFloatArray();
            int v = model.config().vocabSize();
            double worst = 0;
            double spread = 0;
            for (int i = 0; i < ids.length; i++) {
                float[] theirs = jlama.getLogits(jlama.forward((int) ids[i], i, kv, Optional.empty()));
                double[] ourLogProbs = logSoftmax(ours, i * v, v);
                for (int j = 0; j < v; j++) {
                    worst = Math.max(worst, Math.abs(Math.log(theirs[j]) - ourLogProbs[j]));
                    spread = Math.max(spread, Math.abs(ourLogProbs[j] - ourLogProbs[0]));
                }
            }
            assertTrue(spread > 0.5, "the distribution is too flat to compare: " + spread);
            assertTrue(worst < LOG_PROB_TOLERANCE, "max |log p difference| vs Jlama " + worst);
        } finally {
            jlama.close();
        }
    }

    @Test
    void greedyGenerationProducesJlamasTokens() {
        Path dir = checkpoint();
        long[] prompt = {1, 2, 3, 4, 5};
        int n = 20;
        long[] theirs = new long[n];
        AbstractModel jlama = ModelSupport.loadModel(dir.toFile(), DType.F32, DType.F32);
        try (KvBufferCache caches = new KvBufferCache(jlama)) {
            KvBufferCache.KvBuffer kv = caches.getKvBuffer(UUID.randomUUID());
            AbstractTensor out = null;
            for (int i = 0; i < prompt.length; i++) out = jlama.forward((int) prompt[i], i, kv, Optional.empty());
            for (int i = 0; i < n; i++) {
                theirs[i] = Sampling.argMax(jlama.getLogits(out));
                out = jlama.forward((int) theirs[i], prompt.length + i, kv, Optional.empty());
            }
        } finally {
            jlama.close();
        }
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu()); TextTokenizer tok = TextTokenizer.load(dir)) {
            long[] ours = new Generator(model, tok).generate(prompt, Generator.GenerationParams.greedy(n)).tokenIds();
            assertArrayEquals(untilEos(theirs, tok.eosTokenIds()), ours);
            assertTrue(ours.length >= 5, "too short to tell: " + ours.length);
        }
    }

    private static long[] untilEos(long[] ids, long[] eos) {
        for (int i = 0; i < ids.length; i++) {
            for (long e : eos) if (ids[i] == e) return java.util.Arrays.copyOf(ids, i);
        }
        return ids;
    }

    static double[] logSoftmax(float[] logits, int from, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) max = Math.max(max, logits[from + j]);
        double sum = 0;
        for (int j = 0; j < n; j++) sum += Math.exp(logits[from + j] - max);
        double log = Math.log(sum);
        double[] out = new double[n];
        for (int j = 0; j < n; j++) out[j] = logits[from + j] - max - log;
        return out;
    }
}
