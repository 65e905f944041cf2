package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** KTO's losses (TRL 1.13's KTOTrainer) on a batch small enough to check by hand against the formula. */
class KtoLossTest {
    // four completions, two desirable then two undesirable: rho = policy - reference = [1, 0, -1, -2]
    static final float[] POLICY = {-1, -2, -3, -4}, REFERENCE = {-2, -2, -2, -2};
    static final double[] RHO = {1, 0, -1, -2};
    static final boolean[] LABELS = {true, true, false, false};
    // the mismatched pairs: policy - reference = [0.5, 0.5, 0, 0], so the KL estimate z = 0.25
    static final float[] POLICY_KL = {-3, -3, -3, -3}, REFERENCE_KL = {-3.5f, -3.5f, -3, -3};
    static final double Z = 0.25, BETA = 0.5, UP = 1.5, DOWN = 0.5;

    static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    private static KtoLoss.Result run(NDManager m, KtoLoss.Objective o, float[] policyKl, float[] referenceKl) {
        return KtoLoss.compute(m.create(POLICY), m.create(REFERENCE), LABELS, m.create(policyKl), m.create(referenceKl), o);
    }

    @Test
    void ktoMatchesItsFormulaWithTheBatchKlAsReferencePoint() {
        try (NDManager m = NDManager.newBaseManager()) {
            KtoLoss.Result r = run(m, new KtoLoss.Objective(KtoLoss.Type.KTO, BETA, UP, DOWN), POLICY_KL, REFERENCE_KL);
            double expected = (UP * (1 - sigmoid(BETA * (RHO[0] - Z))) + UP * (1 - sigmoid(BETA * (RHO[1] - Z)))
                    + DOWN * (1 - sigmoid(BETA * (Z - RHO[2]))) + DOWN * (1 - sigmoid(BETA * (Z - RHO[3])))) / 4;
            assertEquals(expected, r.loss().getFloat(), 1e-6);
            assertEquals(Z, r.kl(), 1e-6);
            assertEquals(2, r.desirable());
            assertEquals(2, r.undesirable());
            // TRL's metrics: rewards are beta x rho, averaged per label by the caller
            assertEquals(BETA * (RHO[0] + RHO[1]), r.rewardsChosenSum(), 1e-6);
            assertEquals(BETA * (RHO[2] + RHO[3]), r.rewardsRejectedSum(), 1e-6);
            assertEquals(POLICY[0] + POLICY[1], r.logpsChosenSum(), 1e-6);
            assertEquals(POLICY[2] + POLICY[3], r.logpsRejectedSum(), 1e-6);
        }
    }

    @Test
    void aNegativeKlEstimateIsClampedToZero() {
        try (NDManager m = NDManager.newBaseManager()) {
            // policy - reference on the mismatched pairs: [-1, -1, -1, -1]
            KtoLoss.Result r = run(m, new KtoLoss.Objective(KtoLoss.Type.KTO, BETA, 1, 1), POLICY_KL, new float[]{-2, -2, -2, -2});
            assertEquals(0, r.kl(), 0);
            double expected = ((1 - sigmoid(BETA * RHO[0])) + (1 - sigmoid(BETA * RHO[1]))
                    + (1 - sigmoid(-BETA * RHO[2])) + (1 - sigmoid(-BETA * RHO[3]))) / 4;
            assertEquals(expected, r.loss().getFloat(), 1e-6);
        }
    }

    @Test
    void apoZeroUnpairedHasNoReferencePoint() {
        try (NDManager m = NDManager.newBaseManager()) {
            KtoLoss.Result r = KtoLoss.compute(m.create(POLICY), m.create(REFERENCE), LABELS, null, null,
                    KtoLoss.Objective.of(List.of("apo_zero_unpaired"), BETA, UP, DOWN));
            double expected = (UP * (1 - sigmoid(BETA * RHO[0])) + UP * (1 - sigmoid(BETA * RHO[1]))
                    + DOWN * sigmoid(BETA * RHO[2]) + DOWN * sigmoid(BETA * RHO[3])) / 4;
            assertEquals(expected, r.loss().getFloat(), 1e-6);
            assertEquals(0, r.kl(), 0);
        }
    }

    @Test
    void theGradientTreatsTheKlEstimateAsAConstant() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray policy = m.create(POLICY);
            policy.setRequiresGradient(true);
            try (GradientCollector g = Engine.getInstance().newGradientCollector()) {
                // the mismatched log-probs handed in from the same graph: their gradient must still not count
                NDArray policyKl = policy.add(m.create(-2f)).add(m.create(new float[]{0, 1, 2, 3}));
                KtoLoss.Result r = KtoLoss.compute(policy, m.create(REFERENCE), LABELS, policyKl, m.create(new float[]{-5, -5, -5, -5}),
                        new KtoLoss.Objective(KtoLoss.Type.KTO, BETA, UP, DOWN));
                g.backward(r.loss());
                double z = r.kl(); // mean of [2, 2, 2, 2] - ... = the policy's [-3,-3,-3,-3] + 5 = 2
                assertEquals(2, z, 1e-6);
                float[] grad = policy.getGradient().toFloatArray();
                for (int i = 0; i < 4; i++) {
                    double expected;
                    if (LABELS[i]) {
                        double s = sigmoid(BETA * (RHO[i] - z));
                        expected = -UP * BETA * s * (1 - s) / 4;
                    } else {
                        double s = sigmoid(BETA * (z - RHO[i]));
                        expected = DOWN * BETA * s * (1 - s) / 4;
                    }
                    assertEquals(expected, grad[i], 1e-6, "gradient of completion " + i);
                }
            }
        }
    }

    @Test
    void theMismatchedPairsRotateCompletionsByOneWithinTheBatch() {
        List<KtoTrainer.Example> batch = List.of(
                new KtoTrainer.Example(new long[]{1, 2}, new long[]{10}, true),
                new KtoTrainer.Example(new long[]{3}, new long[]{20, 21}, false),
                new KtoTrainer.Example(new long[]{4, 5}, new long[]{30}, true));
        List<SequenceLogProbs.Sequence> kl = KtoTrainer.mismatched(batch);
        // TRL: (x_1, y_n), (x_2, y_1), ..., (x_n, y_{n-1})
        assertArrayEquals(new long[]{1, 2, 30}, kl.get(0).ids());
        assertArrayEquals(new long[]{3, 10}, kl.get(1).ids());
        assertArrayEquals(new long[]{4, 5, 20, 21}, kl.get(2).ids());
        assertArrayEquals(new boolean[]{false, false, true, true}, kl.get(2).scored());
    }

    @Test
    void theSpecTakesKtoConfigNamesAndRefusesWhatKtoCannotDo() {
        String base = "model_name_or_path: m\nkto:\n  dataset: d.jsonl\n";
        RunSpec spec = RunSpec.parse(base + "  desirable_weight: 1.33\n  undesirable_weight: 1.0\n  beta: 0.2\n");
        KtoLoss.Objective o = spec.kto().objective();
        assertEquals(KtoLoss.Type.KTO, o.type());
        assertEquals(1.33, o.desirableWeight(), 0);
        assertEquals(0.2, o.beta(), 0);
        assertEquals(KtoLoss.Type.APO_ZERO_UNPAIRED, RunSpec.parse(base + "  loss_type: apo_zero_unpaired\n").kto().objective().type());
        assertTrue(message(base + "  loss_type: sigmoid\n").contains("kto.loss_type"));
        assertTrue(message(base + "  undesirable_weight: -1\n").contains("kto.undesirable_weight"));
        assertTrue(message(base + "  per_device_train_batch_size: 1\n").contains("kto.per_device_train_batch_size"));
        assertTrue(message(base + "  use_peft: false\n").contains("kto.use_peft"));
        assertTrue(message(base + "dpo:\n  dataset: p.jsonl\n").contains("not both"));
        assertTrue(message("model_name_or_path: m\ndpo:\n  dataset: p.jsonl\n  desirable_weight: 2\n").contains("dpo.desirable_weight"));
        assertTrue(message(base + "  loss_weights: [1.0]\n").contains("kto.loss_weights"));
        assertTrue(message(base + "  packing: true\n").contains("kto.packing"));
        assertTrue(message(base + "executor: trl\n").contains("executor trl"));
        // dpo's default objective is still sigmoid
        assertEquals(List.of("sigmoid"), RunSpec.parse("model_name_or_path: m\ndpo:\n  dataset: p.jsonl\n").dpo().objective().names());
    }

    private static String message(String yaml) {
        return assertThrows(IllegalArgumentException.class, () -> RunSpec.parse(yaml)).getMessage();
    }
}
