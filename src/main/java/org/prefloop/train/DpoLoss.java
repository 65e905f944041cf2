package org.prefloop.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * The DPO losses, with TRL's names and metrics. With {@code h = (log πθ(y_w) - log πθ(y_l)) -
 * (log π_ref(y_w) - log π_ref(y_l))} per pair:
 * <ul>
 *   <li>{@code sigmoid}: {@code -(1-ε) log σ(βh) - ε log σ(-βh)} (ε = label smoothing: robust / conservative DPO)</li>
 *   <li>{@code ipo}: {@code (h - 1/(2β))²}</li>
 *   <li>{@code hinge}: {@code max(0, 1 - βh)}</li>
 * </ul>
 * Each pair's loss is scaled by its weight (e.g. annotator agreement) and the batch loss is the
 * weighted mean. Every constant is a tensor of the arrays' own manager: a Java number handed to
 * an op inside an autograd graph can be freed before backward (why: docs/ARCHITECTURE.md, "The packages").
 */
public final class DpoLoss {
    private DpoLoss() {
    }

    public enum Type { SIGMOID, IPO, HINGE;

        public static Type parse(String name) {
            return switch (name) {
                case "sigmoid" -> SIGMOID;
                case "ipo" -> IPO;
                case "hinge" -> HINGE;
                default -> throw new IllegalArgumentException("loss_type must be sigmoid, ipo or hinge; got '" + name + "'");
            };
        }
    }

    /** The batch loss (a scalar in the graph) and TRL's per-step metrics, as plain numbers. */
    public record Result(NDArray loss, double rewardsChosen, double rewardsRejected, double rewardAccuracy,
                         double rewardMargin, double logpsChosen, double logpsRejected) {
    }

    /**
     * @param policyChosen   [B] summed log-probs of the chosen completions under the policy (in the graph)
     * @param policyRejected [B] the same for the rejected completions
     * @param refChosen      [B] under the reference, no gradient
     * @param refRejected    [B]
     * @param weights        [B] per-pair weights, or null for 1
     */
    public static Result compute(NDArray policyChosen, NDArray policyRejected, NDArray refChosen, NDArray refRejected,
                                 NDArray weights, double beta, Type type, double labelSmoothing) {
        NDManager m = policyChosen.getManager();
        NDArray b = m.create((float) beta);
        NDArray chosenReward = policyChosen.sub(refChosen);
        NDArray rejectedReward = policyRejected.sub(refRejected);
        NDArray h = chosenReward.sub(rejectedReward);
        NDArray perPair = switch (type) {
            case SIGMOID -> {
                NDArray z = h.mul(b);
                NDArray one = m.create(1f);
                NDArray eps = m.create((float) labelSmoothing);
                yield logSigmoid(z).mul(one.sub(eps)).add(logSigmoid(z.neg()).mul(eps)).neg();
            }
            case IPO -> h.sub(m.create((float) (1 / (2 * beta)))).square();
            case HINGE -> m.create(1f).sub(h.mul(b)).maximum(m.create(0f));
        };
        NDArray w = weights == null ? m.ones(perPair.getShape()) : weights;
        NDArray loss = perPair.mul(w).sum().div(w.sum());
        NDArray rc = chosenReward.mul(b);
        NDArray rr = rejectedReward.mul(b);
        return new Result(loss, mean(rc), mean(rr), mean(rc.gt(rr).toType(ai.djl.ndarray.types.DataType.FLOAT32, false)),
                mean(rc.sub(rr)), mean(policyChosen), mean(policyRejected));
    }

    /** log σ(x) = -softplus(-x), written to stay finite for large |x|. */
    static NDArray logSigmoid(NDArray x) {
        NDArray zero = x.getManager().create(0f);
        // -softplus(-x) = min(x, 0) - log(1 + exp(-|x|))
        return x.minimum(zero).sub(x.abs().neg().exp().add(x.getManager().create(1f)).log());
    }

    private static double mean(NDArray a) {
        return a.stopGradient().mean().getFloat();
    }
}
