package org.prefloop.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.model.DecodeBatch;
import org.prefloop.model.Generator;
import org.prefloop.model.Generator.Completion;
import org.prefloop.model.Generator.GenerationParams;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.LowRankHook;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.ProjectionHook;
import org.prefloop.model.TextTokenizer;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;

/**
 * Many versions in one batch: rows running different LoRA adapters and the bare base share each
 * forward pass of the base, with mixed sampling settings and seeds, and every sequence gets
 * exactly what it gets alone on its own version: through the stacked factors of serving hooks
 * (three adapters of different ranks, targets and scalings), and through the per-group path any
 * other hook takes.
 */
class MixedAdapterBatchTest {
    static final TokenizerSpec CHARS = TokenizerSpec.characters("abcdefghij0123456789+-=* ");
    static final ModelConfig CONFIG = ModelConfig.llama(CHARS.characterVocabSize(), 32, 64, 2, 4, 2);

    @TempDir
    static Path tmp;
    static LlamaModel model;
    static TextTokenizer tokenizer;
    static Generator generator;
    static LoraAdapter wide;   // every projection, rank 4
    static LoraAdapter narrow; // q and v only, rank 8: a different shape of adapter in the same batch
    static LoraAdapter thin;   // o, gate and down only, rank 2, rsLoRA scaling: modules the others leave alone, or share with one

    @BeforeAll
    static void load() {
        Path dir = TinyCheckpoint.write(tmp.resolve("ckpt"), CONFIG, 11, CHARS);
        model = LlamaModel.load(dir, Device.cpu());
        tokenizer = TextTokenizer.load(dir);
        generator = new Generator(model, tokenizer);
        wide = LoraAdapter.create(model, LoraAdapter.Config.of(4, 64, LoraAdapterTest.TARGETS, null), 3, true);
        narrow = LoraAdapter.create(model, LoraAdapter.Config.of(8, 128, List.of("q_proj", "v_proj"), null), 4, true);
        thin = LoraAdapter.create(model, new LoraAdapter.Config("LORA", "CAUSAL_LM", 2, 24, 0, List.of("o_proj", "gate_proj", "down_proj"),
                true, "none", null, true), 5, true);
    }

    @AfterAll
    static void close() {
        wide.close();
        narrow.close();
        thin.close();
        tokenizer.close();
        model.close();
    }

    record Case(String prompt, GenerationParams params, ProjectionHook adapter) {
    }

    static final class Probe implements DecodeBatch.Listener {
        final StringBuilder text = new StringBuilder();
        Completion done;

        public void onToken(long tokenId, String textDelta) {
            text.append(textDelta);
        }

        public void onDone(Completion completion) {
            assertNull(done, "onDone once");
            done = completion;
        }
    }

    static GenerationParams sampled(int max, float temperature, float topP, int topK, long seed) {
        return new GenerationParams(max, temperature, topP, topK, 1f, seed, List.of(), null, 0f, 0f, true);
    }

    static GenerationParams greedy(int max) {
        return new GenerationParams(max, 0f, 1f, 0, 1f, null, List.of(), null, 0f, 0f, true);
    }

    /** What the case gets alone: its adapter set on the model, a batch of one. */
    static Completion alone(Case c) {
        model.setProjectionHook(c.adapter());
        try {
            return generator.generate(tokenizer.encode(c.prompt()), c.params());
        } finally {
            model.setProjectionHook(null);
        }
    }

    @Test
    void aBatchMixingThreeServingAdaptersTheBaseAndSamplingSettingsGivesEachRequestWhatItGetsAlone() {
        try (LowRankHook a = wide.servingHook(); LowRankHook b = narrow.servingHook(); LowRankHook c = thin.servingHook()) {
            List<Case> cases = new ArrayList<>(mixedCases(a, b));
            cases.add(3, new Case("12+7=", greedy(24), c));
            cases.add(new Case("abc*3", sampled(20, 1.2f, 0.9f, 8, 5L), c));
            cases.add(new Case("9-4 ", greedy(20), c));
            List<Completion> expected = runMixed(cases);
            for (int other = 0; other < 3; other++) {
                assertTrue(!Arrays.equals(expected.get(3).tokenIds(), expected.get(other).tokenIds()),
                        "the third adapter answers differently: " + expected.get(3).text() + " | " + expected.get(other).text());
            }
        }
    }

    @Test
    void aBatchMixingOtherHooksTakesThePerGroupPathAndGivesTheSame() {
        ProjectionHook a = wide.hook(); // live hooks (a trainer's): not stackable
        ProjectionHook b = narrow.hook();
        runMixed(mixedCases(a, b));
    }

    static List<Case> mixedCases(ProjectionHook a, ProjectionHook b) {
        return List.of(
                new Case("12+7=", greedy(24), a),
                new Case("12+7=", greedy(24), b),
                new Case("12+7=", greedy(24), null),
                new Case("abc*3", sampled(20, 1.2f, 0.9f, 8, 5L), a),
                new Case("abc*3", sampled(20, 1.2f, 0.9f, 8, 5L), b),
                new Case("9-4 ", new GenerationParams(18, 0f, 1f, 0, 1.3f, null, List.of(), null, 0.4f, 0.2f, true), b),
                new Case("jj", sampled(22, 0.7f, 1f, 0, 99L), null),
                new Case("0000", greedy(16), a));
    }

    /**
     * Runs the cases in one batch (three join at first, then one every third step) and checks each
     * against its lone run; the first three are one greedy prompt on a, b and the base, which must differ. Returns
     * the lone runs.
     */
    static List<Completion> runMixed(List<Case> cases) {
        List<Completion> expected = cases.stream().map(MixedAdapterBatchTest::alone).toList();

        List<Probe> probes = new ArrayList<>();
        int widest = 0;
        try (DecodeBatch batch = generator.newBatch()) {
            int next = 0;
            for (int step = 0; step < 200 && (next < cases.size() || !batch.isEmpty()); step++) {
                if (step % 3 == 0 && next < cases.size()) { // three join at first (mixed versions prefilled together), then one at a time
                    List<DecodeBatch.Request> join = new ArrayList<>();
                    for (int k = 0; k < (next == 0 ? 3 : 1); k++, next++) {
                        Case c = cases.get(next);
                        Probe p = new Probe();
                        probes.add(p);
                        join.add(new DecodeBatch.Request(tokenizer.encode(c.prompt()), c.params(), 0, p, c.adapter()));
                    }
                    batch.admit(join);
                }
                batch.step();
                widest = Math.max(widest, batch.size());
            }
        }
        assertTrue(widest >= 5, "sequences of all three versions overlapped: widest batch " + widest);
        for (int i = 0; i < cases.size(); i++) {
            Completion got = probes.get(i).done;
            assertNotNull(got, "case " + i + " finished");
            assertArrayEquals(expected.get(i).tokenIds(), got.tokenIds(), "case " + i + ": " + cases.get(i));
            assertEquals(expected.get(i).text(), got.text(), "case " + i);
            assertEquals(got.text(), probes.get(i).text.toString(), "case " + i + ": the deltas add up to the text");
        }
        // the adapters matter: the same greedy prompt gives three different continuations
        assertTrue(!Arrays.equals(expected.get(0).tokenIds(), expected.get(2).tokenIds())
                && !Arrays.equals(expected.get(1).tokenIds(), expected.get(2).tokenIds())
                && !Arrays.equals(expected.get(0).tokenIds(), expected.get(1).tokenIds()),
                "adapter, other adapter and base differ: " + expected.get(0).text() + " | " + expected.get(1).text() + " | " + expected.get(2).text());
        return expected;
    }
}
