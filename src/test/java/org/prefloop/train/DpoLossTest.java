package org.prefloop.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.DoubleBinaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each DPO loss of TRL's list on a batch small enough to check by hand against the formula. */
class DpoLossTest {
    // policy log-probs (chosen, rejected) and reference log-probs for two pairs:
    // c = pc - rc = [1, 0], r = pr - rr = [-1, 1], h = c - r = [2, -1]; beta 0.5
    static final float[] PC = {-1, -2}, PR = {-3, -1}, RC = {-2, -2}, RR = {-2, -2};
    // scored tokens of each completion
    static final float[] CT = {2, 4}, RT = {1, 2};
    static final double[] C = {1, 0}, R = {-1, 1};
    static final double BETA = 0.5;

    static double logSigmoid(double x) {
        return -Math.log(1 + Math.exp(-x));
    }

    static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    /** The mean over the two pairs of {@code f(c, r)} (pair index passed through i for the length-normalised ones). */
    static double mean(DoubleBinaryOperator f) {
        return (f.applyAsDouble(C[0], R[0]) + f.applyAsDouble(C[1], R[1])) / 2;
    }

    private DpoLoss.Result run(NDManager m, DpoLoss.Objective objective, float[] weights) {
        NDArray w = weights == null ? null : m.create(weights);
        return DpoLoss.compute(m.create(PC), m.create(PR), m.create(RC), m.create(RR), m.create(CT), m.create(RT), w, objective);
    }

    private double loss(NDManager m, String type) {
        return run(m, DpoLoss.Objective.of(List.of(type), null, 0, BETA, type.equals("robust") ? 0.1 : 0), null).loss().getFloat();
    }

    @Test
    void eachLossMatchesItsFormula() {
        double b = BETA;
        try (NDManager m = NDManager.newBaseManager()) {
            assertEquals(mean((c, r) -> -logSigmoid(b * (c - r))), loss(m, "sigmoid"), 1e-6);
            assertEquals(mean((c, r) -> Math.max(0, 1 - b * (c - r))), loss(m, "hinge"), 1e-6);
            double eps = 0.1;
            assertEquals(mean((c, r) -> (-(1 - eps) * logSigmoid(b * (c - r)) + eps * logSigmoid(-b * (c - r))) / (1 - 2 * eps)),
                    loss(m, "robust"), 1e-6);
            assertEquals(mean((c, r) -> -logSigmoid(b * c) - logSigmoid(-b * r)), loss(m, "bco_pair"), 1e-6);
            assertEquals(mean((c, r) -> Math.pow(c - 0.5 / b, 2) + Math.pow(r + 0.5 / b, 2)), loss(m, "sppo_hard"), 1e-6);
            assertEquals(mean((c, r) -> -logSigmoid(b * c) - 0.5 * logSigmoid(-b * c) - 0.5 * logSigmoid(-b * r)), loss(m, "nca_pair"), 1e-6);
            assertEquals(mean((c, r) -> 1 - sigmoid(b * c) + sigmoid(b * r)), loss(m, "apo_zero"), 1e-6);
            assertEquals(mean((c, r) -> sigmoid(b * c) + 1 - sigmoid(b * (c - r))), loss(m, "apo_down"), 1e-6);
            // the length-normalised ones divide each log-ratio by its completion's tokens, as TRL does
            double ipo0 = Math.pow(C[0] / CT[0] - R[0] / RT[0] - 1 / (2 * b), 2), ipo1 = Math.pow(C[1] / CT[1] - R[1] / RT[1] - 1 / (2 * b), 2);
            assertEquals((ipo0 + ipo1) / 2, loss(m, "ipo"), 1e-6);
            double n0 = -logSigmoid(b * (C[0] / CT[0] - R[0] / RT[0])), n1 = -logSigmoid(b * (C[1] / CT[1] - R[1] / RT[1]));
            assertEquals((n0 + n1) / 2, loss(m, "sigmoid_norm"), 1e-6);
        }
    }

    @Test
    void simpoAndOrpoUseThePolicysMeanLogProbsPerTokenAndNoReference() {
        double b = BETA, gamma = 0.5;
        double[] avgC = {PC[0] / CT[0], PC[1] / CT[1]}, avgR = {PR[0] / RT[0], PR[1] / RT[1]};
        try (NDManager m = NDManager.newBaseManager()) {
            DpoLoss.Objective simpo = DpoLoss.Objective.of(List.of("simpo"), null, 0, b, 0, gamma);
            double expected = (-logSigmoid(b * (avgC[0] - avgR[0]) - gamma) - logSigmoid(b * (avgC[1] - avgR[1]) - gamma)) / 2;
            assertEquals(expected, run(m, simpo, null).loss().getFloat(), 1e-6);
            assertTrue(!simpo.usesReference());

            DpoLoss.Objective orpo = DpoLoss.Objective.of(List.of("orpo"), null, 0, b, 0);
            java.util.function.DoubleUnaryOperator logOdds = x -> x - Math.log(1 - Math.exp(x));
            double nll = -(PC[0] + PC[1]) / (CT[0] + CT[1]);
            double ratio = (-logSigmoid(logOdds.applyAsDouble(avgC[0]) - logOdds.applyAsDouble(avgR[0]))
                    - logSigmoid(logOdds.applyAsDouble(avgC[1]) - logOdds.applyAsDouble(avgR[1]))) / 2;
            assertEquals(nll + b * ratio, run(m, orpo, null).loss().getFloat(), 1e-5);
            assertTrue(!orpo.usesReference());
            assertTrue(DpoLoss.Objective.of(List.of("simpo", "sigmoid"), null, 0, b, 0).usesReference());
        }
    }

    @Test
    void termsAddUpWithTheirWeightsAndSftIsTheChosenNllPerToken() {
        try (NDManager m = NDManager.newBaseManager()) {
            double sigmoid = mean((c, r) -> -logSigmoid(BETA * (c - r)));
            double nll = -(PC[0] + PC[1]) / (CT[0] + CT[1]);
            DpoLoss.Objective listed = DpoLoss.Objective.of(List.of("sigmoid", "sft"), List.of(0.8, 0.5), 0, BETA, 0);
            assertEquals(0.8 * sigmoid + 0.5 * nll, run(m, listed, null).loss().getFloat(), 1e-6);
            // rpo_alpha is the old spelling of the same sft term
            DpoLoss.Objective rpo = DpoLoss.Objective.of(List.of("sigmoid"), null, 0.5, BETA, 0);
            assertEquals(sigmoid + 0.5 * nll, run(m, rpo, null).loss().getFloat(), 1e-6);
            assertEquals(List.of("sigmoid", "sft"), rpo.names());
        }
    }

    @Test
    void badCombinationsAreRefusedByName() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DpoLoss.Objective.of(List.of("kto"), null, 0, BETA, 0))
                .getMessage().contains("'kto'"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DpoLoss.Objective.of(List.of("orpo", "sft"), null, 0, BETA, 0))
                .getMessage().contains("orpo already holds"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DpoLoss.Objective.of(List.of("sigmoid", "sft"), List.of(1.0), 0, BETA, 0))
                .getMessage().contains("loss_weights"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DpoLoss.Objective.of(List.of("sigmoid"), null, 0, BETA, 0.1))
                .getMessage().contains("robust"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DpoLoss.Objective.of(List.of("sigmoid", "sft"), null, 1.0, BETA, 0))
                .getMessage().contains("rpo_alpha"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DpoLoss.Objective.of(List.of("sft"), null, 0, BETA, 0))
                .getMessage().contains("preference loss"));
    }

    @Test
    void weightsScaleEachPairAndMetricsUseTrlsDefinitions() {
        try (NDManager m = NDManager.newBaseManager()) {
            DpoLoss.Result r = run(m, DpoLoss.Objective.sigmoid(BETA), new float[]{1, 3});
            assertEquals((-logSigmoid(1) - 3 * logSigmoid(-0.5)) / 4, r.loss().getFloat(), 1e-6);
            // rewards are beta * (policy - reference): chosen [0.5, 0], rejected [-0.5, 0.5]
            assertEquals(0.25, r.rewardsChosen(), 1e-6);
            assertEquals(0.0, r.rewardsRejected(), 1e-6);
            assertEquals(0.5, r.rewardAccuracy(), 1e-6);
            assertEquals(0.25, r.rewardMargin(), 1e-6);
            assertEquals(-1.5, r.logpsChosen(), 1e-6);
            assertEquals(-2.0, r.logpsRejected(), 1e-6);
        }
    }
}
