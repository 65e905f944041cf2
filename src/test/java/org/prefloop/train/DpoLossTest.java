package org.prefloop.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Each DPO loss variant on a batch small enough to check by hand. */
class DpoLossTest {
    // policy log-probs (chosen, rejected) and reference log-probs for two pairs:
    // h = (pc - pr) - (rc - rr) = [2, -1]; with beta 0.5, beta*h = [1, -0.5]
    static final float[] PC = {-1, -2}, PR = {-3, -1}, RC = {-2, -2}, RR = {-2, -2};

    private static double sigmoidLoss(double z, double eps) {
        return -(1 - eps) * Math.log(1 / (1 + Math.exp(-z))) - eps * Math.log(1 / (1 + Math.exp(z)));
    }

    private DpoLoss.Result run(NDManager m, DpoLoss.Type type, double smoothing, float[] weights) {
        NDArray w = weights == null ? null : m.create(weights);
        return DpoLoss.compute(m.create(PC), m.create(PR), m.create(RC), m.create(RR), w, 0.5, type, smoothing);
    }

    @Test
    void eachVariantMatchesItsFormula() {
        try (NDManager m = NDManager.newBaseManager()) {
            assertEquals((sigmoidLoss(1, 0) + sigmoidLoss(-0.5, 0)) / 2, run(m, DpoLoss.Type.SIGMOID, 0, null).loss().getFloat(), 1e-6);
            assertEquals((sigmoidLoss(1, 0.1) + sigmoidLoss(-0.5, 0.1)) / 2, run(m, DpoLoss.Type.SIGMOID, 0.1, null).loss().getFloat(), 1e-6);
            // ipo: (h - 1/(2 beta))^2 = (2 - 1)^2 and (-1 - 1)^2
            assertEquals((1 + 4) / 2.0, run(m, DpoLoss.Type.IPO, 0, null).loss().getFloat(), 1e-6);
            // hinge: max(0, 1 - beta h) = 0 and 1.5
            assertEquals(0.75, run(m, DpoLoss.Type.HINGE, 0, null).loss().getFloat(), 1e-6);
        }
    }

    @Test
    void weightsScaleEachPairAndMetricsUseTrlsDefinitions() {
        try (NDManager m = NDManager.newBaseManager()) {
            DpoLoss.Result r = run(m, DpoLoss.Type.SIGMOID, 0, new float[]{1, 3});
            assertEquals((sigmoidLoss(1, 0) + 3 * sigmoidLoss(-0.5, 0)) / 4, r.loss().getFloat(), 1e-6);
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
