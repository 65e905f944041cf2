package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.model.Generator.GenerationParams;

/**
 * Token log-probabilities as the serving API reports them: the sampler's for a generated token,
 * {@link PromptLogprobs} for a given text, both equal to the model core's own log-softmax.
 */
class TokenLogprobsTest {
    @TempDir
    static Path tmp;
    static LlamaModel model;
    static TextTokenizer tokenizer;

    @BeforeAll
    static void load() {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), LlamaModelTest.BASE, 31, LlamaModelTest.CHARS);
        model = LlamaModel.load(dir, Device.cpu());
        tokenizer = TextTokenizer.load(dir);
    }

    @AfterAll
    static void close() {
        tokenizer.close();
        model.close();
    }

    @Test
    void logprobsAreALogSoftmaxWithTheMostLikelyFirstAndTiesByLowerId() {
        float[] logits = {1f, 2f, 3f, 2f};
        double logZ = Math.log(Math.exp(1) + 2 * Math.exp(2) + Math.exp(3));
        TokenLogprobs lp = Sampling.logprobs(logits, 0, 3);
        assertEquals(0, lp.token());
        assertEquals(1 - logZ, lp.logprob(), 1e-6);
        assertArrayEquals(new long[]{2, 1, 3}, lp.topIds());
        assertEquals(3 - logZ, lp.topLogprobs()[0], 1e-6);
        assertEquals(2 - logZ, lp.topLogprobs()[2], 1e-6);
        assertArrayEquals(new long[]{2, 1, 3, 0}, Sampling.logprobs(logits, 1, 20).topIds(), "no more alternatives than the vocabulary");
        assertEquals(0, Sampling.logprobs(logits, 1, 0).topIds().length);
        float[] huge = {1000f, 0f, -1000f};
        assertEquals(0, Sampling.logprobs(huge, 0, 1).logprob(), 1e-6, "stable for large logits");
    }

    /** Row p: DJL's log-softmax of the core's logits after ids[0..p]. */
    private static float[][] coreLogSoftmax(long[] ids) {
        boolean wasGrad = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try (NDManager m = model.manager().newSubManager()) {
            NDArray hidden = model.hidden(m.create(new long[][]{ids}), null, null);
            float[] flat = model.logits(hidden).logSoftmax(-1).toFloatArray();
            int vocab = flat.length / ids.length;
            float[][] rows = new float[ids.length][];
            for (int p = 0; p < ids.length; p++) rows[p] = Arrays.copyOfRange(flat, p * vocab, (p + 1) * vocab);
            return rows;
        } finally {
            JniUtils.setGradMode(wasGrad);
        }
    }

    @Test
    void aScoredTextHasTheCoresLogprobAtEveryPositionAcrossSlices() {
        long[] ids = tokenizer.encode("the quick brown fox jumps over the lazy dog ".repeat(7)); // more than two chunks
        assertTrue(ids.length > 2 * PromptLogprobs.CHUNK, "length " + ids.length);
        float[][] lsm = coreLogSoftmax(ids);
        List<TokenLogprobs> scores = PromptLogprobs.score(model, ids, 2);
        assertEquals(ids.length - 1, scores.size());
        for (int p = 0; p + 1 < ids.length; p++) {
            TokenLogprobs s = scores.get(p);
            assertEquals(ids[p + 1], s.token());
            assertEquals(lsm[p][(int) ids[p + 1]], s.logprob(), 1e-4, "position " + (p + 1));
            assertEquals(lsm[p][(int) s.topIds()[0]], s.topLogprobs()[0], 1e-4);
            for (float v : lsm[p]) assertTrue(v <= s.topLogprobs()[0] + 1e-6, "the first alternative is the most likely");
        }
        assertEquals(List.of(), PromptLogprobs.score(model, new long[]{ids[0]}, 2), "one token has nothing to be scored on");
    }

    /** Collects a sequence's tokens and their logprobs. */
    static final class Probe implements DecodeBatch.Listener {
        final int top;
        final List<Long> tokens = new ArrayList<>();
        final List<TokenLogprobs> logprobs = new ArrayList<>();
        Generator.Completion done;

        Probe(int top) {
            this.top = top;
        }

        public void onToken(long tokenId, String textDelta) {
            tokens.add(tokenId);
        }

        public void onToken(long tokenId, String textDelta, TokenLogprobs lp) {
            onToken(tokenId, textDelta);
            if (top >= 0 || lp != null) logprobs.add(lp);
        }

        public int topLogprobs() {
            return top;
        }

        public void onDone(Generator.Completion completion) {
            done = completion;
        }
    }

    @Test
    void generatedTokensCarryTheLogprobsOfTheirPrefixInABatchOfMixedRequests() {
        long[] a = tokenizer.encode("hello there");
        long[] b = tokenizer.encode("abc");
        Probe withLogprobs = new Probe(3);
        Probe without = new Probe(-1);
        Probe sampled = new Probe(1);
        GenerationParams greedy = GenerationParams.greedy(8);
        GenerationParams hot = new GenerationParams(8, 1.5f, 0.9f, 5, 1.3f, 9L, List.of(), new long[0]);
        try (DecodeBatch batch = new Generator(model, tokenizer).newBatch()) {
            batch.admit(List.of(new DecodeBatch.Request(a, greedy, 0, withLogprobs), new DecodeBatch.Request(b, greedy, 0, without)));
            batch.step();
            batch.admit(List.of(new DecodeBatch.Request(b, hot, 0, sampled)));
            while (!batch.isEmpty()) batch.step();
        }
        Generator.Completion alone = new Generator(model, tokenizer).generate(a, greedy);
        assertArrayEquals(alone.tokenIds(), withLogprobs.done.tokenIds(), "asking for logprobs changes no token");
        assertArrayEquals(new Generator(model, tokenizer).generate(b, greedy).tokenIds(), without.done.tokenIds());
        assertTrue(without.logprobs.isEmpty(), "no logprobs unless asked");
        assertCoreLogprobs(a, withLogprobs);
        assertCoreLogprobs(b, sampled); // drawn with penalties, temperature, top-k and top-p: still the model's own numbers
    }

    private static void assertCoreLogprobs(long[] prompt, Probe probe) {
        long[] generated = probe.done.tokenIds();
        long[] all = Arrays.copyOf(prompt, prompt.length + generated.length);
        System.arraycopy(generated, 0, all, prompt.length, generated.length);
        float[][] lsm = coreLogSoftmax(all);
        for (int j = 0; j < generated.length; j++) {
            TokenLogprobs lp = probe.logprobs.get(j);
            assertEquals(generated[j], lp.token());
            assertEquals(lsm[prompt.length - 1 + j][(int) generated[j]], lp.logprob(), 1e-4, "token " + j);
            assertEquals(probe.top, lp.topIds().length);
        }
        if (probe.logprobs.size() > generated.length) assertNull(probe.logprobs.get(generated.length), "the ending eos token has none");
    }
}
