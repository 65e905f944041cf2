package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.LongStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.Generator.Completion;
import org.prefloop.model.Generator.GenerationParams;

/**
 * Continuous batching: sequences that join a running batch at different steps, with different
 * sampling settings, get exactly what each gets alone; finished and cancelled ones leave at once.
 */
class DecodeBatchTest {
    @RegisterExtension
    static final TinyGenerator tiny = new TinyGenerator();
    static LlamaModel model;
    static TextTokenizer tokenizer;
    static Generator generator;

    @BeforeAll
    static void load() {
        model = tiny.model;
        tokenizer = tiny.tokenizer;
        generator = tiny.generator;
    }

    /** Collects one sequence's tokens, completion and, when asked, each token's logprob; can be cancelled. */
    static final class Probe implements DecodeBatch.Listener {
        final boolean logprobs;
        final List<Long> tokens = new ArrayList<>();
        final List<Float> tokenLogprobs = new ArrayList<>(); // NaN: none given (the eos/stop token that ends the sequence)
        final StringBuilder text = new StringBuilder();
        final AtomicBoolean cancel = new AtomicBoolean();
        Completion done;

        Probe() {
            this(false);
        }

        Probe(boolean logprobs) {
            this.logprobs = logprobs;
        }

        public void onToken(long tokenId, String textDelta) {
            tokens.add(tokenId);
            text.append(textDelta);
        }

        public void onToken(long tokenId, String textDelta, TokenLogprobs lp) {
            onToken(tokenId, textDelta);
            if (logprobs) tokenLogprobs.add(lp == null ? Float.NaN : lp.logprob());
        }

        public int topLogprobs() {
            return logprobs ? 0 : -1;
        }

        public void onDone(Completion completion) {
            assertNull(done, "onDone once");
            done = completion;
        }

        public boolean cancelled() {
            return cancel.get();
        }
    }

    static GenerationParams params(int max, float temperature, float topP, int topK, float repetition, Long seed, List<String> stop,
                                   float frequency, float presence) {
        return new GenerationParams(max, temperature, topP, topK, repetition, seed, stop, null, frequency, presence, false);
    }

    static Completion alone(String prompt, GenerationParams p) {
        return generator.generate(tokenizer.encode(prompt), p);
    }

    @Test
    void latecomersWithTheirOwnSettingsGetWhatTheyGetAlone() {
        // greedy, seeded sampling with filters and penalties, greedy with a stop string and penalties
        List<String> prompts = List.of("hello world 42", "ab", "<|im_start|>user\n12+7=<|im_end|>\n", "x=1+2\n", "zzz 9", "q");
        List<GenerationParams> settings = List.of(
                GenerationParams.greedy(30),
                params(25, 1.3f, 0.9f, 12, 1f, 5L, List.of(), 0f, 0f),
                params(28, 0f, 1f, 0, 1.3f, null, List.of(), 0.4f, 0.2f),
                params(20, 0.8f, 1f, 0, 1f, 99L, List.of(), 0.5f, 0f),
                GenerationParams.greedy(26).withStop(List.of("a b")),
                params(15, 2f, 1f, 3, 1.1f, 7L, List.of(), 0f, 1f));
        List<Completion> expected = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) expected.add(alone(prompts.get(i), settings.get(i)));

        List<Probe> probes = new ArrayList<>();
        int[] sizes = new int[200];
        try (DecodeBatch batch = generator.newBatch()) {
            int next = 0;
            for (int step = 0; step < sizes.length && (next < prompts.size() || !batch.isEmpty()); step++) {
                if (step % 4 == 0 && next < prompts.size()) { // one joins every fourth step, two at once at the end
                    List<DecodeBatch.Request> join = new ArrayList<>();
                    int count = next == 4 ? 2 : 1;
                    for (int k = 0; k < count; k++, next++) {
                        Probe p = new Probe();
                        probes.add(p);
                        join.add(new DecodeBatch.Request(tokenizer.encode(prompts.get(next)), settings.get(next), 0, p));
                    }
                    batch.admit(join);
                }
                batch.step();
                sizes[step] = batch.size();
            }
        }
        assertTrue(Arrays.stream(sizes).max().orElse(0) >= 3, "sequences overlapped: " + Arrays.toString(sizes));
        for (int i = 0; i < prompts.size(); i++) {
            Completion got = probes.get(i).done;
            assertNotNull(got, "sequence " + i + " finished");
            assertArrayEquals(expected.get(i).tokenIds(), got.tokenIds(), "sequence " + i + " (" + settings.get(i) + ")");
            assertEquals(expected.get(i).text(), got.text());
            assertEquals(expected.get(i).text(), probes.get(i).text.toString(), "the deltas add up to the text");
            assertEquals(expected.get(i).finishReason(), got.finishReason());
        }
    }

    @Test
    void aShortSequenceLeavesTheBatchAsSoonAsItEnds() {
        Probe longOne = new Probe();
        Probe shortOne = new Probe();
        try (DecodeBatch batch = generator.newBatch()) {
            batch.admit(List.of(new DecodeBatch.Request(tokenizer.encode("hello"), fixedLength(40), 0, longOne)));
            batch.step();
            batch.admit(List.of(new DecodeBatch.Request(tokenizer.encode("abc"), fixedLength(3), 0, shortOne)));
            assertEquals(2, batch.size());
            batch.step();
            batch.step(); // the short one's first token came with its prefill: two steps make three
            assertEquals("length", shortOne.done.finishReason());
            assertEquals(1, batch.size(), "the finished sequence left at once");
            assertNull(longOne.done);
            while (!batch.isEmpty()) batch.step();
        }
        assertEquals(40, longOne.done.tokenIds().length);
        assertArrayEquals(alone("hello", fixedLength(40)).tokenIds(), longOne.done.tokenIds());
    }

    @Test
    void aCancelledSequenceLeavesBeforeTheNextStep() {
        Probe keep = new Probe();
        Probe drop = new Probe();
        try (DecodeBatch batch = generator.newBatch()) {
            batch.admit(List.of(new DecodeBatch.Request(tokenizer.encode("hello"), fixedLength(30), 0, keep),
                    new DecodeBatch.Request(tokenizer.encode("world"), fixedLength(30), 0, drop)));
            batch.step();
            drop.cancel.set(true);
            int tokensBefore = drop.tokens.size();
            batch.step();
            assertEquals("cancelled", drop.done.finishReason());
            assertEquals(tokensBefore, drop.tokens.size(), "no token after the cancellation");
            assertEquals(1, batch.size());
            while (!batch.isEmpty()) batch.step();
        }
        assertArrayEquals(alone("hello", fixedLength(30)).tokenIds(), keep.done.tokenIds());
    }

    @Test
    void aLongRunningBatchCompactsItsCacheAndStaysExact() {
        // arrivals keep the batch busy well past the cache's first capacity (64 columns), so it is compacted and grown
        List<Probe> probes = new ArrayList<>();
        List<String> prompts = new ArrayList<>();
        try (DecodeBatch batch = generator.newBatch()) {
            for (int step = 0; step < 400 && (probes.size() < 12 || !batch.isEmpty()); step++) {
                if (step % 9 == 0 && probes.size() < 12) {
                    String prompt = "n" + "abcdefgh".substring(0, probes.size() % 8) + probes.size();
                    Probe p = new Probe();
                    probes.add(p);
                    prompts.add(prompt);
                    batch.admit(List.of(new DecodeBatch.Request(tokenizer.encode(prompt), fixedLength(30 + probes.size() * 3), 0, p)));
                }
                batch.step();
            }
            assertTrue(batch.isEmpty());
        }
        for (int i = 0; i < probes.size(); i++) {
            assertArrayEquals(alone(prompts.get(i), fixedLength(30 + (i + 1) * 3)).tokenIds(), probes.get(i).done.tokenIds(), "sequence " + i);
        }
    }

    @Test
    void rowsPaddedForALongerNewcomerKeepThePaddingMaskedWhenTheCacheIsCompactedOrKept() {
        // b and d join after a (their rows start past column 0); c's longer prompt pads every row, leaving b and d a gap of
        // masked columns; d ends with its gap (its tokens go to the prefix cache in two pieces); a and c leave, so the
        // compaction that comes when the columns run out moves b, gap and all
        Generator cached = new Generator(model, tokenizer);
        cached.prefixCache().setBudgetBytes(64L << 20);
        Probe a = new Probe();
        Probe b = new Probe();
        Probe c = new Probe();
        Probe d = new Probe();
        Probe e = new Probe();
        String longPrompt = "a prompt longer than the batch so far: 0123456789";
        long[] next;
        try (DecodeBatch batch = cached.newBatch()) {
            batch.admit(List.of(new DecodeBatch.Request(tokenizer.encode("ab"), fixedLength(12), 0, a)));
            for (int i = 0; i < 4; i++) batch.step();
            batch.admit(List.of(new DecodeBatch.Request(tokenizer.encode("cd"), fixedLength(120), 0, b),
                    new DecodeBatch.Request(tokenizer.encode("ef"), fixedLength(9), 0, d)));
            for (int i = 0; i < 3; i++) batch.step();
            batch.admit(List.of(new DecodeBatch.Request(tokenizer.encode(longPrompt), fixedLength(6), 0, c)));
            while (d.done == null) batch.step();
            next = LongStream.concat(LongStream.concat(LongStream.of(tokenizer.encode("ef")), LongStream.of(d.done.tokenIds())), LongStream.of(tokenizer.encode("gh"))).toArray();
            long reusedBefore = cached.prefixCache().tokensReused();
            batch.admit(List.of(new DecodeBatch.Request(next, fixedLength(10), 0, e)));
            assertEquals(tokenizer.encode("ef").length + 9 - 1, cached.prefixCache().tokensReused() - reusedBefore, "d's prompt and reply, kept across its gap");
            while (!batch.isEmpty()) batch.step();
        }
        assertArrayEquals(alone("ab", fixedLength(12)).tokenIds(), a.done.tokenIds());
        assertArrayEquals(alone(longPrompt, fixedLength(6)).tokenIds(), c.done.tokenIds());
        assertArrayEquals(alone("ef", fixedLength(9)).tokenIds(), d.done.tokenIds());
        assertArrayEquals(generator.generate(next, fixedLength(10)).tokenIds(), e.done.tokenIds(), "a prompt reusing d's keys and values");
        assertArrayEquals(alone("cd", fixedLength(120)).tokenIds(), b.done.tokenIds(), "the row moved by compaction, its padding still masked");
    }

    @Test
    void aLongPromptIsPrefilledInChunksBetweenDecodeStepsAndGivesWhatItGetsWholeAtOnce() {
        String longPrompt = "the quick brown fox 12+7=19 jumps over the lazy dog; x=1+2\n".repeat(3); // well over 4 chunks of 16
        int promptTokens = tokenizer.encode(longPrompt).length;
        int chunks = (promptTokens + 15) / 16;
        assertTrue(chunks >= 5, "prompt of " + promptTokens + " tokens");
        GenerationParams seeded = params(20, 1.1f, 0.95f, 0, 1f, 17L, List.of(), 0f, 0f);
        Completion greedyWhole = alone(longPrompt, fixedLength(20));
        Completion seededWhole = alone(longPrompt, seeded);

        Probe runner = new Probe();
        Probe greedy = new Probe();
        Probe sampled = new Probe();
        try (DecodeBatch batch = generator.newBatch()) {
            batch.setPrefillChunk(16);
            batch.admit(List.of(new DecodeBatch.Request(tokenizer.encode("hello"), fixedLength(60), 0, runner)));
            batch.step();
            batch.admit(List.of(new DecodeBatch.Request(tokenizer.encode(longPrompt), fixedLength(20), 0, greedy),
                    new DecodeBatch.Request(tokenizer.encode(longPrompt), seeded, 0, sampled)));
            assertEquals(3, batch.size(), "the long prompts count as in the batch while they are prefilled");
            assertEquals(1, batch.decoding());
            int stepsUntilFirstToken = 0;
            int runnerBefore = runner.tokens.size();
            while (greedy.tokens.isEmpty()) {
                batch.step();
                stepsUntilFirstToken++;
            }
            // one chunk per step: the first prompt's chunks, and the runner decoded once in each of those steps
            assertEquals(chunks, stepsUntilFirstToken);
            assertEquals(runnerBefore + chunks, runner.tokens.size(), "the running sequence got a token between every two chunks");
            assertTrue(sampled.tokens.isEmpty(), "the second long prompt waits its turn");
            assertEquals(chunks, batch.prefillChunks());
            while (!batch.isEmpty()) batch.step();
            assertEquals(2 * chunks, batch.prefillChunks());
        }
        assertArrayEquals(greedyWhole.tokenIds(), greedy.done.tokenIds(), "chunked prefill computes what a whole prefill does");
        assertEquals(seededWhole.text(), sampled.done.text(), "seeded sampling too");
        assertEquals(alone("hello", fixedLength(60)).text(), runner.done.text());
    }

    @Test
    void aSharedPromptPrefixIsComputedOnceAndReusedWithIdenticalOutputs() {
        Generator cached = new Generator(model, tokenizer);
        cached.prefixCache().setBudgetBytes(64L << 20);
        String system = "<|im_start|>system\nyou add numbers, answer briefly and never lie about sums.<|im_end|>\n";
        List<String> prompts = List.of(system + "<|im_start|>user\n1+2<|im_end|>\n", system + "<|im_start|>user\n30+4<|im_end|>\n",
                system + "<|im_start|>user\n1+2<|im_end|>\n");
        List<GenerationParams> settings = List.of(fixedLength(20), params(20, 1.2f, 0.9f, 0, 1f, 3L, List.of(), 0f, 0f), fixedLength(20));
        long[] first = tokenizer.encode(prompts.get(0));
        long[] second = tokenizer.encode(prompts.get(1));
        int common = 0;
        while (common < Math.min(first.length, second.length) && first[common] == second[common]) common++;
        int block = PrefixCache.BLOCK;
        long expectedReuse = Math.min(common, second.length - 1) // the shared system prompt, to the token
                + first.length - 1;                                 // the repeated prompt: all but its last token
        assertTrue(common % block != 0 && (first.length - 1) % block != 0, "both hits end inside a block");
        assertTrue(common / block >= 3, "the shared part spans several blocks: " + common + " tokens");

        assertEquals(alone(prompts.get(0), settings.get(0)).text(), cached.generate(first, settings.get(0)).text());
        assertEquals(0, cached.prefixCache().tokensReused(), "nothing to reuse at first");
        Probe running = new Probe();
        List<Probe> probes = List.of(new Probe(), new Probe());
        try (DecodeBatch batch = cached.newBatch()) {
            batch.admit(List.of(new DecodeBatch.Request(tokenizer.encode("hello"), fixedLength(30), 0, running)));
            batch.step();
            batch.admit(List.of(new DecodeBatch.Request(second, settings.get(1), 0, probes.get(0)),
                    new DecodeBatch.Request(tokenizer.encode(prompts.get(2)), settings.get(2), 0, probes.get(1))));
            while (!batch.isEmpty()) batch.step();
        }
        assertEquals(expectedReuse, cached.prefixCache().tokensReused(), "tokens whose keys and values were not computed again");
        for (int i = 1; i < 3; i++) {
            Completion whole = alone(prompts.get(i), settings.get(i));
            assertArrayEquals(whole.tokenIds(), probes.get(i - 1).done.tokenIds(), "prompt " + i + " with a reused prefix");
        }
        assertArrayEquals(alone("hello", fixedLength(30)).tokenIds(), running.done.tokenIds());
        assertTrue(cached.prefixCache().bytes() > 0);
        cached.prefixCache().setBudgetBytes(0);
        assertEquals(0, cached.prefixCache().bytes(), "a lower budget evicts at once");
    }

    @Test
    void aConversationsNextTurnReusesThePreviousPromptAndReplyAndGetsWhatItGetsAlone() {
        Generator cached = new Generator(model, tokenizer);
        cached.prefixCache().setBudgetBytes(64L << 20);
        long blockBytes = cached.prefixCache().blockBytes();
        long[] turn1 = tokenizer.encode("<|im_start|>system\nanswer briefly<|im_end|>\n<|im_start|>user\nwhat is 7*8?<|im_end|>\n<|im_start|>assistant\n");
        int replyTokens = 21;
        assertTrue(turn1.length % PrefixCache.BLOCK != 0, "the prompt ends inside a block: " + turn1.length);
        Probe reply = new Probe();
        Probe longer = new Probe();
        Probe after = new Probe();
        Probe next = new Probe();
        long[] turn2;
        long[] longPrompt = tokenizer.encode("a longer prompt than the others, so that their rows are padded: " + "x".repeat(40));
        long[] hello = tokenizer.encode("hello");
        try (DecodeBatch batch = cached.newBatch()) {
            // the turn shares its batch with a longer prompt (its row starts after padding) and a row after it (which moves into its place)
            batch.admit(List.of(new DecodeBatch.Request(longPrompt, fixedLength(60), 0, longer),
                    new DecodeBatch.Request(turn1, fixedLength(replyTokens), 0, reply),
                    new DecodeBatch.Request(hello, fixedLength(50), 0, after)));
            assertEquals((blocks(longPrompt.length) + blocks(turn1.length) + blocks(hello.length)) * blockBytes, cached.prefixCache().bytes(), "the prompts, kept at their prefill");
            while (reply.done == null) batch.step();
            assertEquals(replyTokens, reply.done.tokenIds().length);
            assertTrue(longer.done == null && after.done == null, "the others still decode");
            int computed = turn1.length + replyTokens - 1; // the last token generated was never fed back
            assertEquals((blocks(longPrompt.length) + blocks(computed) + blocks(hello.length)) * blockBytes, cached.prefixCache().bytes(),
                    "the turn's prompt and reply kept, its prompt's partial last block dropped");

            long[] user2 = tokenizer.encode("<|im_end|>\n<|im_start|>user\nand 8*9?<|im_end|>\n<|im_start|>assistant\n");
            turn2 = LongStream.concat(LongStream.concat(LongStream.of(turn1), LongStream.of(reply.done.tokenIds())), LongStream.of(user2)).toArray();
            long reusedBefore = cached.prefixCache().tokensReused();
            batch.admit(List.of(new DecodeBatch.Request(turn2, fixedLength(15), 0, next)));
            assertEquals(computed, cached.prefixCache().tokensReused() - reusedBefore, "the next turn reuses the previous prompt and all of the reply that was computed");
            while (!batch.isEmpty()) batch.step();
        }
        assertArrayEquals(generator.generate(turn1, fixedLength(replyTokens)).tokenIds(), reply.done.tokenIds());
        assertArrayEquals(generator.generate(turn2, fixedLength(15)).tokenIds(), next.done.tokenIds(), "the next turn, reusing the reply's keys and values");
        assertArrayEquals(alone("hello", fixedLength(50)).tokenIds(), after.done.tokenIds());
    }

    private static int blocks(int tokens) {
        return (tokens + PrefixCache.BLOCK - 1) / PrefixCache.BLOCK;
    }

    @Test
    void prefixHitsOfDifferentLengthsNonHitsAndAdaptersArePrefilledTogetherInOnePassAndGetWhatTheyGetAlone() {
        List<String> targets = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
        try (LoraAdapter loraA = LoraAdapter.create(model, LoraAdapter.Config.of(4, 64, targets, null), 3, true);
             LoraAdapter loraB = LoraAdapter.create(model, LoraAdapter.Config.of(8, 128, List.of("q_proj", "v_proj"), null), 4, true);
             LowRankHook a = loraA.servingHook();
             LowRankHook b = loraB.servingHook()) {
            Generator cached = new Generator(model, tokenizer);
            cached.prefixCache().setBudgetBytes(64L << 20);
            String system = "<|im_start|>system\nyou add numbers, answer briefly and never lie about sums.<|im_end|>\n";
            String shortSystem = "<|im_start|>system\nbe brief<|im_end|>\n";
            // what the cache holds before: the long system prompt on the base, the short one on adapter a
            List<Case> warm = List.of(new Case(system + "<|im_start|>user\n1+2+3+4+5+6+7+8+9+10+11+12+13<|im_end|>\n", fixedLength(4), null),
                    new Case(shortSystem + "12", fixedLength(4), a));
            List<Case> cases = List.of(
                    new Case(system + "<|im_start|>user\n30+4<|im_end|>\n", fixedLength(20), null),              // hit, the system prompt and the tokens after it that it shares
                    new Case(shortSystem + "7*8", fixedLength(18), a),                                                // hit, shorter than case 0's
                    new Case(warm.get(0).prompt(), params(20, 1.2f, 0.9f, 0, 1f, 3L, List.of(), 0f, 0f), null),     // hit, all but the last token, sampled
                    new Case("hello", fixedLength(16), null),                                                          // no hit
                    new Case(shortSystem + "7*8", fixedLength(18), b),                                                // cached on a, not on b: no hit
                    new Case("zz 9", params(15, 0.9f, 1f, 5, 1.1f, 8L, List.of(), 0f, 0f), a),                        // no hit, sampled
                    new Case(system + "<|im_start|>user\n30+4<|im_end|>\n", params(20, 1f, 1f, 0, 1f, 11L, List.of(), 0f, 0f), null), // case 0's prompt: shares its row
                    new Case("hello", params(16, 1.5f, 1f, 0, 1f, 2L, List.of(), 0f, 0f), null));                     // case 3's prompt: shares its row
            int[] expectedReuse = new int[cases.size()];
            for (int i = 0; i < cases.size(); i++) {
                for (Case w : warm) {
                    if (w.adapter() == cases.get(i).adapter()) expectedReuse[i] = Math.max(expectedReuse[i], sharedTokens(w.prompt(), cases.get(i).prompt()));
                }
            }
            assertTrue(expectedReuse[0] >= 3 * PrefixCache.BLOCK && expectedReuse[1] >= PrefixCache.BLOCK && expectedReuse[1] < expectedReuse[0]
                            && expectedReuse[2] > expectedReuse[0] && Arrays.stream(expectedReuse).anyMatch(n -> n % PrefixCache.BLOCK != 0),
                    "hits of three different lengths, some ending inside a block: " + Arrays.toString(expectedReuse));
            assertEquals(0, expectedReuse[3] + expectedReuse[4] + expectedReuse[5], "and three misses");
            long expectedLoaded = 0; // a prompt sent twice with one adapter is computed, and its prefix loaded, once
            for (int i = 0; i < cases.size(); i++) {
                boolean repeated = false;
                for (int j = 0; j < i; j++) repeated |= cases.get(j).prompt().equals(cases.get(i).prompt()) && cases.get(j).adapter() == cases.get(i).adapter();
                if (!repeated) expectedLoaded += expectedReuse[i];
            }
            assertTrue(expectedLoaded < Arrays.stream(expectedReuse).sum(), "a repeated hit");
            List<Completion> expected = cases.stream().map(DecodeBatchTest::alone).toList();

            Probe running = new Probe();
            List<Probe> probes = new ArrayList<>();
            try (DecodeBatch batch = cached.newBatch()) {
                batch.setPrefillChunk(24); // the long prompts are over it, but what remains of them after the cached prefix is not
                List<DecodeBatch.Request> warmUp = new ArrayList<>();
                for (Case w : warm) warmUp.add(new DecodeBatch.Request(tokenizer.encode(w.prompt()), w.params(), 0, new Probe(), w.adapter()));
                warmUp.add(new DecodeBatch.Request(tokenizer.encode("abc"), fixedLength(30), 0, running));
                batch.admit(warmUp.subList(2, 3));
                batch.step();
                for (DecodeBatch.Request w : warmUp.subList(0, 2)) { // chunked: nothing cached yet
                    batch.admit(List.of(w));
                    while (batch.size() > batch.decoding()) batch.step();
                }
                while (batch.size() > 1) batch.step();
                assertEquals(0, cached.prefixCache().tokensReused(), "nothing reused while warming up");
                assertTrue(running.done == null, "a sequence is decoding when the newcomers join");

                long passes = batch.prefillPasses();
                List<DecodeBatch.Request> join = new ArrayList<>();
                for (Case c : cases) {
                    Probe p = new Probe();
                    probes.add(p);
                    join.add(new DecodeBatch.Request(tokenizer.encode(c.prompt()), c.params(), 0, p, c.adapter()));
                }
                batch.admit(join);
                assertEquals(passes + 1, batch.prefillPasses(), "hits and misses prefilled in one forward pass");
                assertEquals(cases.size() + 1, batch.decoding(), "all joined at once");
                for (Probe p : probes) assertEquals(1, p.tokens.size(), "each got its first token from the prefill");
                assertEquals(expectedLoaded, cached.prefixCache().tokensReused(), "the cached prefixes were reused, a repeated prompt's once");
                while (!batch.isEmpty()) batch.step();
            }
            for (int i = 0; i < cases.size(); i++) {
                assertArrayEquals(expected.get(i).tokenIds(), probes.get(i).done.tokenIds(), "case " + i + " (reused " + expectedReuse[i] + " tokens)");
                assertEquals(expected.get(i).text(), probes.get(i).done.text());
            }
            assertArrayEquals(alone("abc", fixedLength(30)).tokenIds(), running.done.tokenIds());
        }
    }

    @Test
    void newcomersAdmittedBetweenTheLayersOfAStepHaveTheirFirstTokenBeforeItEndsAndGetWhatTheyGetAlone() {
        assertTrue(model.config().numHiddenLayers() >= 2, "a step has a point between two layers");
        List<String> targets = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
        try (LoraAdapter lora = LoraAdapter.create(model, LoraAdapter.Config.of(4, 64, targets, null), 6, true);
             LowRankHook adapter = lora.servingHook()) {
            List<Case> running = List.of(new Case("abc", fixedLength(24), null),
                    new Case("x=1+2\n", params(22, 1.1f, 0.9f, 8, 1.2f, 4L, List.of(), 0f, 0f), adapter));
            List<Case> arriving = List.of(new Case("hello world", fixedLength(18), adapter),
                    new Case("zz 9", params(16, 0.9f, 1f, 5, 1.1f, 8L, List.of(), 0.3f, 0f), null),
                    new Case("q", fixedLength(1), null)); // done at its first token
            List<Completion> expectedRunning = running.stream().map(DecodeBatchTest::alone).toList();
            List<Completion> expectedArriving = arriving.stream().map(DecodeBatchTest::alone).toList();

            List<Probe> runningProbes = new ArrayList<>();
            List<Probe> arrivingProbes = new ArrayList<>();
            List<Integer> firstTokensInStep = new ArrayList<>();
            int[] sizeAfterAdmit = new int[1];
            try (DecodeBatch batch = generator.newBatch()) {
                List<DecodeBatch.Request> first = new ArrayList<>();
                for (Case c : running) {
                    Probe p = new Probe();
                    runningProbes.add(p);
                    first.add(new DecodeBatch.Request(tokenizer.encode(c.prompt()), c.params(), 0, p, c.adapter()));
                }
                batch.admit(first);
                batch.step();
                int[] calls = new int[1];
                batch.setBetweenLayers(() -> {
                    if (calls[0]++ > 0) return; // the first point of the next step
                    List<DecodeBatch.Request> join = new ArrayList<>();
                    for (Case c : arriving) {
                        Probe p = new Probe();
                        arrivingProbes.add(p);
                        join.add(new DecodeBatch.Request(tokenizer.encode(c.prompt()), c.params(), 0, p, c.adapter()));
                    }
                    int tokensBefore = runningProbes.get(0).tokens.size();
                    batch.admit(join);
                    for (Probe p : arrivingProbes) firstTokensInStep.add(p.tokens.size());
                    assertEquals(tokensBefore, runningProbes.get(0).tokens.size(), "the step in progress has not given its tokens yet");
                    sizeAfterAdmit[0] = batch.size();
                });
                batch.step();
                assertEquals(List.of(1, 1, 1), firstTokensInStep, "each newcomer had its first token inside the step");
                assertEquals(running.size() + arriving.size(), sizeAfterAdmit[0], "counted in the batch while waiting for their rows");
                assertEquals(running.size() + arriving.size() - 1, batch.decoding(), "they took their rows when the step ended, the finished one left");
                assertNotNull(arrivingProbes.get(2).done, "a sequence done at its first token left at once");
                for (Probe p : arrivingProbes.subList(0, 2)) assertEquals(1, p.tokens.size(), "their second token comes from the next step");
                while (!batch.isEmpty()) batch.step();
            }
            for (int i = 0; i < running.size(); i++) {
                assertArrayEquals(expectedRunning.get(i).tokenIds(), runningProbes.get(i).done.tokenIds(), "running " + i);
            }
            for (int i = 0; i < arriving.size(); i++) {
                assertArrayEquals(expectedArriving.get(i).tokenIds(), arrivingProbes.get(i).done.tokenIds(), "arriving " + i);
                assertEquals(expectedArriving.get(i).text(), arrivingProbes.get(i).done.text());
            }
        }
    }

    record Case(String prompt, GenerationParams params, ProjectionHook adapter) {
    }

    /** What the case gets alone, without a prefix cache: its adapter set on the model, a batch of one. */
    static Completion alone(Case c) {
        model.setProjectionHook(c.adapter());
        try {
            return alone(c.prompt(), c.params());
        } finally {
            model.setProjectionHook(null);
        }
    }

    /** Tokens of {@code prompt} that {@code cachedPrompt} shares, its last token always computed. */
    static int sharedTokens(String cachedPrompt, String prompt) {
        long[] x = tokenizer.encode(cachedPrompt);
        long[] y = tokenizer.encode(prompt);
        int common = 0;
        while (common < Math.min(x.length, y.length) && x[common] == y[common]) common++;
        return Math.min(common, y.length - 1);
    }

    @Test
    void ignoreEosGeneratesTheFullLength() {
        GenerationParams p = fixedLength(50);
        Completion c = alone("ab", p);
        assertEquals(50, c.tokenIds().length);
        assertEquals("length", c.finishReason());
        assertFalse(c.text().isEmpty());
    }

    static GenerationParams fixedLength(int n) {
        return new GenerationParams(n, 0f, 1f, 0, 1f, null, List.of(), null, 0f, 0f, true);
    }
}
