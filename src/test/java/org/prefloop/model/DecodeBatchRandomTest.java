package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.DecodeBatchTest.Probe;
import org.prefloop.model.Generator.Completion;
import org.prefloop.model.Generator.GenerationParams;

/**
 * Continuous batching under a seeded random workload, everything at once: arrivals at random
 * steps and between the layers of a step, prompts of random lengths (so longer newcomers pad the
 * rows and compaction moves rows with gaps), chunked prefill, a small prefix cache that evicts,
 * repeated prompts, prompts that continue an earlier sequence's prompt and output, two LoRA
 * adapters and the base in one batch, greedy and seeded sampling with penalties and stop strings,
 * and cancellations. Every sequence must get exactly what it gets alone, without a cache (a
 * cancelled one: a beginning of that).
 */
class DecodeBatchRandomTest {
    static final int SEQUENCES = 150;
    static final float LOGPROB_TOLERANCE = 1e-4f;
    @RegisterExtension
    static final TinyGenerator tiny = new TinyGenerator();

    /** One sequence of the workload and what became of it. */
    private record Sequence(long[] prompt, GenerationParams params, ProjectionHook adapter, Probe probe) {
    }

    @Test
    void withAPrefixCacheThatEvicts() {
        randomWorkloadGetsWhatEachSequenceGetsAlone(1, 40);
    }

    @Test
    void withoutAPrefixCache() {
        randomWorkloadGetsWhatEachSequenceGetsAlone(2026, 0);
    }

    /** The workload drawn from {@code seed}, with a prefix cache of {@code cacheBlocks} blocks (0: none). */
    private static void randomWorkloadGetsWhatEachSequenceGetsAlone(long seed, int cacheBlocks) {
        List<String> targets = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
        try (LoraAdapter loraA = LoraAdapter.create(tiny.model, LoraAdapter.Config.of(4, 64, targets, null), 3, true);
             LoraAdapter loraB = LoraAdapter.create(tiny.model, LoraAdapter.Config.of(8, 128, List.of("q_proj", "v_proj"), null), 4, true);
             LowRankHook a = loraA.servingHook();
             LowRankHook b = loraB.servingHook()) {
            List<ProjectionHook> versions = Arrays.asList(null, a, b);
            Generator cached = new Generator(tiny.model, tiny.tokenizer);
            cached.prefixCache().setBudgetBytes(cacheBlocks * cached.prefixCache().blockBytes());
            SplittableRandom random = new SplittableRandom(seed);
            List<Sequence> sequences = new ArrayList<>();
            int[] inStep = new int[1];
            int cancelled = 0;
            int maxRows = 0;
            long gapsClosed;
            long chunks;
            try (DecodeBatch batch = cached.newBatch()) {
                batch.setPrefillChunk(24);
                batch.setBetweenLayers(() -> {
                    if (sequences.size() < SEQUENCES && random.nextInt(12) == 0) {
                        batch.admit(List.of(newcomer(random, sequences, versions)));
                        inStep[0]++;
                    }
                });
                for (int step = 0; step < 5000 && (sequences.size() < SEQUENCES || !batch.isEmpty()); step++) {
                    if (sequences.size() < SEQUENCES && random.nextInt(3) == 0) {
                        List<DecodeBatch.Request> join = new ArrayList<>();
                        for (int k = 1 + random.nextInt(3); k > 0 && sequences.size() < SEQUENCES; k--) join.add(newcomer(random, sequences, versions));
                        batch.admit(join);
                    }
                    List<Sequence> running = sequences.stream().filter(s -> s.probe().done == null && !s.probe().cancel.get()).toList();
                    if (!running.isEmpty() && random.nextInt(12) == 0) {
                        running.get(random.nextInt(running.size())).probe().cancel.set(true); // its client went away
                        cancelled++;
                    }
                    batch.step();
                    maxRows = Math.max(maxRows, batch.decoding());
                }
                assertTrue(batch.isEmpty(), "the workload ended");
                gapsClosed = batch.gapsClosed();
                chunks = batch.prefillChunks();
            }
            assertTrue(inStep[0] > 0 && cancelled > 0 && maxRows >= 6 && (cached.prefixCache().tokensReused() > 0) == (cacheBlocks > 0) && gapsClosed > 0 && chunks > 0,
                    "the workload covered what it is for: " + inStep[0] + " admitted inside steps, " + cancelled + " cancelled, "
                            + maxRows + " rows at most, " + cached.prefixCache().tokensReused() + " tokens reused, "
                            + gapsClosed + " rows' padding closed by compaction, " + chunks + " prefill chunks");
            double worst = 0;
            for (int i = 0; i < sequences.size(); i++) {
                Sequence s = sequences.get(i);
                Completion got = s.probe().done;
                assertNotNull(got, "sequence " + i + " ended");
                Probe aloneProbe = alone(s);
                Completion alone = aloneProbe.done;
                String what = "sequence " + i + " (" + s.prompt().length + " prompt tokens, " + s.params() + ", adapter " + versions.indexOf(s.adapter()) + ")";
                if (got.finishReason().equals("cancelled")) {
                    assertTrue(s.probe().cancel.get(), what + " was cancelled");
                    long[] head = Arrays.copyOf(alone.tokenIds(), Math.min(alone.tokenIds().length, got.tokenIds().length));
                    assertArrayEquals(head, got.tokenIds(), what + ": what it got before it was cancelled");
                } else {
                    assertArrayEquals(alone.tokenIds(), got.tokenIds(), what);
                    assertEquals(alone.text(), got.text(), what);
                    assertEquals(alone.finishReason(), got.finishReason(), what);
                }
                for (int t = 0; t < s.probe().tokenLogprobs.size(); t++) { // what the model computed, not only what it picked
                    float expected = aloneProbe.tokenLogprobs.get(t);
                    float actual = s.probe().tokenLogprobs.get(t);
                    worst = Math.max(worst, Float.isNaN(expected) ? 0 : Math.abs(expected - actual));
                    assertEquals(expected, actual, LOGPROB_TOLERANCE, what + ": logprob of token " + t);
                }
            }
            System.out.printf("DecodeBatchRandomTest, seed %d, prefix cache of %d blocks: %d sequences, worst logprob difference from alone %.1e%n",
                    seed, cacheBlocks, sequences.size(), worst);
        }
    }

    /**
     * A random newcomer: a new prompt of 1 to 80 characters (one in six: 100 to 220), an earlier prompt again, or an earlier
     * finished sequence's prompt and output followed by more (a conversation's next turn).
     */
    private static DecodeBatch.Request newcomer(SplittableRandom random, List<Sequence> sequences, List<ProjectionHook> versions) {
        ProjectionHook adapter = versions.get(random.nextInt(versions.size()));
        long[] prompt = null;
        int kind = random.nextInt(4);
        if (kind == 0 && !sequences.isEmpty()) {
            Sequence earlier = sequences.get(random.nextInt(sequences.size()));
            prompt = earlier.prompt();
            adapter = earlier.adapter();
        } else if (kind == 1) {
            for (Sequence earlier : sequences) {
                if (earlier.probe().done == null || earlier.probe().done.finishReason().equals("cancelled")) continue;
                prompt = LongStream.concat(LongStream.concat(LongStream.of(earlier.prompt()), LongStream.of(earlier.probe().done.tokenIds())),
                        LongStream.of(tiny.tokenizer.encode(text(random, 1 + random.nextInt(12))))).toArray();
                adapter = earlier.adapter();
                if (random.nextBoolean()) break;
            }
        }
        if (prompt == null) prompt = tiny.tokenizer.encode(text(random, random.nextInt(6) == 0 ? 100 + random.nextInt(120) : 1 + random.nextInt(80)));
        int max = random.nextInt(5) == 0 ? 60 + random.nextInt(100) : 1 + random.nextInt(40); // some outlive many others
        GenerationParams params = switch (random.nextInt(4)) {
            case 0 -> DecodeBatchTest.fixedLength(max);
            case 1 -> GenerationParams.greedy(max).withStop(List.of(text(random, 1)));
            case 2 -> DecodeBatchTest.params(max, 0.5f + random.nextFloat(), 0.8f + random.nextFloat() / 5, random.nextInt(20), 1.2f,
                    random.nextLong(), List.of(), 0.3f, 0.1f);
            default -> DecodeBatchTest.params(max, 0f, 1f, 0, 1.3f, null, List.of(), 0f, 0.5f);
        };
        Probe probe = new Probe(random.nextInt(4) != 0);
        sequences.add(new Sequence(prompt, params, adapter, probe));
        return new DecodeBatch.Request(prompt, params, 0, probe, adapter);
    }

    private static String text(SplittableRandom random, int length) {
        String alphabet = "abcdefgh 0123456789+=\n";
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < length; i++) s.append(alphabet.charAt(random.nextInt(alphabet.length())));
        return s.toString();
    }

    /** What the sequence gets alone: a batch of one, without a prefix cache, as {@link Generator#generate} runs it. */
    private static Probe alone(Sequence s) {
        Probe alone = new Probe(true);
        try (DecodeBatch batch = tiny.generator.newBatch()) {
            batch.admit(List.of(new DecodeBatch.Request(s.prompt(), s.params(), 0, alone, s.adapter())));
            while (!batch.isEmpty()) batch.step();
        }
        return alone;
    }
}
