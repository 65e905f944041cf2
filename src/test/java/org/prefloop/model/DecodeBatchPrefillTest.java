package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.jni.JniUtils;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentSkipListSet;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.model.Generator.Completion;
import org.prefloop.model.Generator.GenerationParams;

/**
 * How a newcomer's prompt is prefilled: small passes run on the decode threads, large ones on the
 * engine's, with the same tokens either way; and each listener hears, before its first token, how
 * its prompt was prefilled (the pass it shared, its rows and tokens, the chunks it took).
 */
class DecodeBatchPrefillTest {
    @TempDir
    static Path tmp;
    static LlamaModel model;
    static TextTokenizer tokenizer;
    static Generator generator;
    static int engineThreads;

    @BeforeAll
    static void load() {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), LlamaModelTest.BASE.withModelType("qwen2"), 21, LlamaModelTest.CHARS);
        model = LlamaModel.load(dir, Device.cpu());
        tokenizer = TextTokenizer.load(dir);
        generator = new Generator(model, tokenizer);
        engineThreads = JniUtils.getNumThreads();
    }

    @AfterAll
    static void close() {
        JniUtils.setNumThreads(engineThreads);
        tokenizer.close();
        model.close();
    }

    /** Greedy, fixed length. */
    static GenerationParams greedy(int tokens) {
        return new GenerationParams(tokens, 0f, 1f, 0, 1f, null, List.of(), null, 0f, 0f, true);
    }

    /** Adds nothing; remembers libtorch's intra-op threads whenever a projection runs. */
    static final class ThreadsSeen implements ProjectionHook {
        final Set<Integer> threads = new ConcurrentSkipListSet<>();

        public NDArray delta(String module, NDArray input) {
            threads.add(JniUtils.getNumThreads());
            return null;
        }
    }

    /** Collects tokens, and the prefill report with how many tokens had come before it. */
    static final class Probe implements DecodeBatch.Listener {
        final List<Long> tokens = new java.util.ArrayList<>();
        DecodeBatch.Prefilled prefilled;
        int tokensBeforeReport = -1;
        int reports;

        public void onPrefilled(DecodeBatch.Prefilled p) {
            prefilled = p;
            tokensBeforeReport = tokens.size();
            reports++;
        }

        public void onToken(long tokenId, String textDelta) {
            tokens.add(tokenId);
        }

        public void onDone(Completion completion) {
        }
    }

    /** Runs one prompt alone in a batch whose engine has {@code threads} threads; returns the threads its projections saw during prefill. */
    static Set<Integer> prefillThreads(long[] prompt, int threads, int smallPrefill, Probe probe) {
        JniUtils.setNumThreads(threads);
        ThreadsSeen seen = new ThreadsSeen();
        try (DecodeBatch batch = generator.newBatch()) {
            batch.setSmallPrefillTokens(smallPrefill);
            batch.admit(List.of(new DecodeBatch.Request(prompt, greedy(1), 0, probe, seen)));
        } finally {
            JniUtils.setNumThreads(engineThreads);
        }
        return seen.threads;
    }

    @Test
    void aSmallPrefillRunsOnTheDecodeThreadsALargeOneOnTheEnginesWithTheSameTokens() {
        long[] prompt = tokenizer.encode("the quick brown fox");
        assertTrue(prompt.length > 4 && prompt.length <= DecodeBatch.DEFAULT_SMALL_PREFILL_TOKENS, "prompt of " + prompt.length + " tokens");
        Probe small = new Probe();
        Probe large = new Probe();
        assertEquals(Set.of(generator.decodeThreads()), prefillThreads(prompt, 3, DecodeBatch.DEFAULT_SMALL_PREFILL_TOKENS, small),
                "a pass of a few tokens runs on the decode threads, not the engine's 3");
        assertEquals(Set.of(3), prefillThreads(prompt, 3, 4, large), "a pass over the small size runs on the engine's threads");
        assertEquals(large.tokens, small.tokens, "the same first token on either");
    }

    @Test
    void eachNewcomerHearsHowItsPromptWasPrefilledBeforeItsFirstToken() {
        long[] a = tokenizer.encode("hello there");
        long[] b = tokenizer.encode("another prompt"); // both fit the 16-token chunk: prefilled together
        long[] chunked = tokenizer.encode("x".repeat(37));
        Probe pa = new Probe();
        Probe pb = new Probe();
        Probe pc = new Probe();
        long before = System.nanoTime();
        try (DecodeBatch batch = generator.newBatch()) {
            batch.setPrefillChunk(16);
            batch.admit(List.of(new DecodeBatch.Request(a, greedy(3), 0, pa), new DecodeBatch.Request(b, greedy(3), 0, pb),
                    new DecodeBatch.Request(chunked, greedy(3), 0, pc)));
            while (!batch.isEmpty()) batch.step();
        }
        for (Probe p : List.of(pa, pb, pc)) {
            assertNotNull(p.prefilled);
            assertEquals(1, p.reports, "told once");
            assertEquals(0, p.tokensBeforeReport, "before the first token");
            assertTrue(before <= p.prefilled.admitted() && p.prefilled.admitted() <= p.prefilled.start() && p.prefilled.start() < p.prefilled.end(),
                    "admitted, then started, then ended: " + p.prefilled);
        }
        assertEquals(pa.prefilled, pb.prefilled, "the two short prompts shared one pass");
        assertEquals(2, pa.prefilled.rows());
        assertEquals(a.length + b.length, pa.prefilled.tokens(), "the real tokens of both rows");
        assertEquals(1, pa.prefilled.passes());
        int chunks = (chunked.length + 15) / 16;
        assertTrue(chunks >= 3, "prompt of " + chunked.length + " tokens");
        assertEquals(chunks, pc.prefilled.passes(), "a chunked prompt reports its passes");
        assertEquals(1, pc.prefilled.rows());
        assertEquals(chunked.length - 16 * (chunks - 1), pc.prefilled.tokens(), "the tokens of its last chunk");
        assertTrue(pc.prefilled.start() >= pa.prefilled.end(), "the chunks run in the steps after the joint pass");
        assertArrayEquals(generator.generate(chunked, greedy(3)).tokenIds(), pc.tokens.stream().mapToLong(Long::longValue).toArray());
    }
}
