package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.prefloop.model.Generator.Completion;
import org.prefloop.model.Generator.GenerationParams;

class GeneratorTest {
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

    /** Greedy decoding the slow way: the whole sequence through the model for every new token, no cache. */
    static long[] greedyWithoutCache(long[] prompt, int n, long[] eos) {
        List<Long> seq = new ArrayList<>();
        for (long id : prompt) seq.add(id);
        List<Long> out = new ArrayList<>();
        try (NDManager m = NDManager.newBaseManager()) {
            for (int i = 0; i < n; i++) {
                long[] ids = seq.stream().mapToLong(Long::longValue).toArray();
                NDArray logits = model.logits(model.hidden(m.create(new long[][] {ids}), null, null));
                float[] last = logits.get(0, ids.length - 1).toFloatArray();
                long next = Sampling.argMax(last);
                for (long e : eos) if (e == next) return out.stream().mapToLong(Long::longValue).toArray();
                out.add(next);
                seq.add(next);
            }
        }
        return out.stream().mapToLong(Long::longValue).toArray();
    }

    @Test
    void greedyWithTheCacheEqualsGreedyWithoutIt() {
        long[] prompt = tokenizer.encode("<|im_start|>user\n12+7=<|im_end|>\n<|im_start|>assistant\n");
        Completion c = generator.generate(prompt, GenerationParams.greedy(12));
        assertArrayEquals(greedyWithoutCache(prompt, 12, tokenizer.eosTokenIds()), c.tokenIds());
        assertEquals(prompt.length, c.promptTokens());
        assertEquals(tokenizer.decode(c.tokenIds()), c.text());
    }

    @Test
    void aBatchOfDifferentLengthsGivesWhatEachPromptGivesAlone() {
        List<long[]> prompts = List.of(tokenizer.encode("ab"), tokenizer.encode("hello world 42"), tokenizer.encode("x=1+2\n"));
        List<Completion> batch = generator.generate(prompts, GenerationParams.greedy(10), null);
        for (int i = 0; i < prompts.size(); i++) {
            assertArrayEquals(greedyWithoutCache(prompts.get(i), 10, tokenizer.eosTokenIds()), batch.get(i).tokenIds(), "prompt " + i);
        }
    }

    @Test
    void maxTokensEndsWithLength() {
        Completion c = generator.generate(tokenizer.encode("abc"), new GenerationParams(5, 1f, 1f, 0, 1f, 1L, List.of(), new long[0]));
        if (c.tokenIds().length == 5) assertEquals("length", c.finishReason());
        else assertEquals("stop", c.finishReason());
        assertTrue(c.tokenIds().length <= 5);
    }

    @Test
    void stopTokenIdsEndWithStopAndAreNotIncluded() {
        long[] prompt = tokenizer.encode("abc");
        long[] free = generator.generate(prompt, GenerationParams.greedy(8)).tokenIds();
        assertTrue(free.length >= 3, "needs a few tokens to test with");
        long stopAt = free[2];
        int firstIndex = 0;
        while (free[firstIndex] != stopAt) firstIndex++;
        Completion c = generator.generate(prompt, new GenerationParams(8, 0f, 1f, 0, 1f, null, List.of(), new long[] {stopAt}));
        assertEquals("stop", c.finishReason());
        assertArrayEquals(java.util.Arrays.copyOf(free, firstIndex), c.tokenIds());
    }

    @Test
    void stopStringsCutTheTextAndStreamingNeverShowsThem() {
        long[] prompt = tokenizer.encode("hello ");
        Completion free = generator.generate(prompt, GenerationParams.greedy(16));
        assertTrue(free.text().length() >= 6, "needs some text: " + free.text());
        String stop = free.text().substring(3, 5);
        int cut = free.text().indexOf(stop);
        StringBuilder streamed = new StringBuilder();
        List<Long> streamedTokens = new ArrayList<>();
        Completion c = generator.generate(List.of(prompt), GenerationParams.greedy(16).withStop(List.of(stop)),
                (seq, token, delta) -> {
                    streamed.append(delta);
                    streamedTokens.add(token);
                    assertFalse(streamed.toString().contains(stop), "streamed the stop string");
                }).get(0);
        assertEquals("stop", c.finishReason());
        assertEquals(free.text().substring(0, cut), c.text());
        assertEquals(c.text(), streamed.toString());
        assertEquals(c.tokenIds().length, streamedTokens.size());
    }

    @Test
    void streamingDeliversEveryTokenOfEverySequence() {
        List<long[]> prompts = List.of(tokenizer.encode("ab"), tokenizer.encode("zzz 9"));
        Map<Integer, StringBuilder> texts = new ConcurrentHashMap<>();
        Map<Integer, Integer> counts = new ConcurrentHashMap<>();
        List<Completion> out = generator.generate(prompts, GenerationParams.greedy(7), (seq, token, delta) -> {
            texts.computeIfAbsent(seq, k -> new StringBuilder()).append(delta);
            counts.merge(seq, 1, Integer::sum);
        });
        for (int i = 0; i < 2; i++) {
            assertEquals(out.get(i).text(), texts.get(i).toString());
            int ended = out.get(i).finishReason().equals("stop") ? 1 : 0; // the eos token is reported too
            assertEquals(out.get(i).tokenIds().length + ended, counts.get(i));
        }
    }

    @Test
    void seededSamplingIsReproducibleAndSeedsDiffer() {
        long[] prompt = tokenizer.encode("ab");
        GenerationParams a = new GenerationParams(20, 1.5f, 1f, 0, 1f, 42L, List.of(), new long[0]);
        GenerationParams b = new GenerationParams(20, 1.5f, 1f, 0, 1f, 43L, List.of(), new long[0]);
        long[] first = generator.generate(prompt, a).tokenIds();
        assertArrayEquals(first, generator.generate(prompt, a).tokenIds());
        assertNotEquals(java.util.Arrays.toString(first), java.util.Arrays.toString(generator.generate(prompt, b).tokenIds()));
    }

    @Test
    void topKOfOneAndATinyTopPAreGreedy() {
        long[] prompt = tokenizer.encode("hello");
        long[] greedy = generator.generate(prompt, GenerationParams.greedy(10)).tokenIds();
        assertArrayEquals(greedy, generator.generate(prompt, new GenerationParams(10, 2f, 1f, 1, 1f, 7L, List.of(), null)).tokenIds());
        assertArrayEquals(greedy, generator.generate(prompt, new GenerationParams(10, 2f, 1e-6f, 0, 1f, 7L, List.of(), null)).tokenIds());
    }

    @Test
    void repetitionPenaltyFollowsTheHuggingFaceRule() {
        float[] logits = {2f, -2f, 1f};
        java.util.BitSet seen = new java.util.BitSet();
        seen.set(0);
        seen.set(1);
        // seen positive logit divided (2 -> 0.8 < 1), seen negative multiplied; greedy then picks id 2
        GenerationParams p = new GenerationParams(1, 0f, 1f, 0, 2.5f, null, List.of(), null);
        assertEquals(2, Sampling.choose(logits.clone(), seen, p, new java.util.SplittableRandom(1)));
        assertEquals(0, Sampling.choose(logits.clone(), seen, GenerationParams.greedy(1), new java.util.SplittableRandom(1)));
    }

    @Test
    void topKAndTopPSeeTokensInTheOrderOfAStableSortByLogit() {
        java.util.Random rnd = new java.util.Random(5);
        float[] logits = new float[5000];
        for (int i = 0; i < logits.length; i++) logits[i] = rnd.nextInt(40) / 4f - 5f; // many ties
        logits[7] = -0.0f;
        logits[8] = 0.0f;
        Integer[] boxed = new Integer[logits.length];
        for (int i = 0; i < boxed.length; i++) boxed[i] = i;
        java.util.Arrays.sort(boxed, (a, b) -> Float.compare(logits[b], logits[a]));
        int[] expected = java.util.Arrays.stream(boxed).mapToInt(Integer::intValue).toArray();
        assertArrayEquals(expected, Sampling.descending(logits));
        assertArrayEquals(java.util.Arrays.copyOf(expected, 40), Sampling.largest(logits, 40));
        assertArrayEquals(java.util.Arrays.copyOf(expected, 1), Sampling.largest(logits, 1));
    }

    @Test
    void samplingFollowsTheTemperedDistribution() {
        float[] logits = {0f, (float) Math.log(3)}; // p = 1/4, 3/4
        GenerationParams p = new GenerationParams(1, 1f, 1f, 0, 1f, null, List.of(), null);
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        int ones = 0;
        for (int i = 0; i < 20000; i++) ones += (int) Sampling.choose(logits.clone(), new java.util.BitSet(), p, r);
        assertEquals(0.75, ones / 20000.0, 0.015);
    }

    @Test
    void badParametersAreRefusedByName() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> GenerationParams.greedy(0)).getMessage().contains("maxTokens"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> new GenerationParams(5, -1f, 1f, 0, 1f, null, null, null)).getMessage().contains("temperature"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> new GenerationParams(5, 1f, 0f, 0, 1f, null, null, null)).getMessage().contains("topP"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> generator.generate(new long[] {999}, GenerationParams.greedy(2))).getMessage().contains("999"));
    }
}
