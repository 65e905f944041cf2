package org.prefloop.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import java.util.List;
import java.util.Locale;

/**
 * KTO (Kahneman–Tversky optimisation) on unpaired data, as TRL 1.13's {@code KTOTrainer} computes
 * it: each example is one completion labelled desirable (thumbs up) or undesirable (thumbs down),
 * with {@code ρ = log πθ(y|x) - log π_ref(y|x)} its log-ratio (summed over the completion's tokens)
 * and {@code z} a reference point, the batch's KL estimate:
 * <ul>
 *   <li>{@code kto}: desirable {@code λ_D (1 - σ(β(ρ - z)))}, undesirable {@code λ_U (1 - σ(β(z - ρ)))}</li>
 *   <li>{@code apo_zero_unpaired}: desirable {@code λ_D (1 - σ(βρ))}, undesirable {@code λ_U σ(βρ)} (no reference point)</li>
 * </ul>
 * The batch loss is the mean over all its examples (TRL's {@code nanmean} of the concatenated,
 * weighted losses). {@code z = max(0, mean(log πθ(y'|x) - log π_ref(y'|x)))} over mismatched pairs
 * (each prompt with another example's completion), with no gradient, as TRL detaches it.
 * Every constant is a tensor of the arrays' own manager (see {@link DpoLoss}).
 */
public final class KtoLoss {
    private KtoLoss() {
    }

    /** TRL's KTOConfig.loss_type values. */
    public enum Type {
        KTO, APO_ZERO_UNPAIRED;

        public String trlName() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** Whether the loss needs the KL reference point (TRL's {@code calculate_KL}). */
        public boolean usesKl() {
            return this == KTO;
        }

        public static Type parse(String name) {
            for (Type t : values()) if (t.trlName().equals(name)) return t;
            throw new IllegalArgumentException("loss_type must be kto or apo_zero_unpaired for a kto stage; got '" + name + "'");
        }
    }

    /** KTOConfig's settings: loss_type, beta, desirable_weight (λ_D), undesirable_weight (λ_U). */
    public record Objective(Type type, double beta, double desirableWeight, double undesirableWeight) {
        public Objective {
            if (!(beta > 0) || Double.isInfinite(beta)) throw new IllegalArgumentException("beta must be positive");
            if (!(desirableWeight >= 0) || Double.isInfinite(desirableWeight)) throw new IllegalArgumentException("desirable_weight must be finite and not negative");
            if (!(undesirableWeight >= 0) || Double.isInfinite(undesirableWeight)) throw new IllegalArgumentException("undesirable_weight must be finite and not negative");
            if (desirableWeight == 0 && undesirableWeight == 0) throw new IllegalArgumentException("desirable_weight and undesirable_weight cannot both be 0");
        }

        public static Objective of(List<String> lossType, double beta, double desirableWeight, double undesirableWeight) {
            if (lossType == null || lossType.isEmpty()) return new Objective(Type.KTO, beta, desirableWeight, undesirableWeight);
            if (lossType.size() != 1) throw new IllegalArgumentException("loss_type of a kto stage is one name (kto or apo_zero_unpaired), not a list");
            return new Objective(Type.parse(lossType.get(0)), beta, desirableWeight, undesirableWeight);
        }
    }

    /**
     * The batch loss (a scalar in the graph) and TRL's metrics as plain numbers. A metric over
     * desirable (undesirable) examples is NaN when the batch has none; the sums and counts let a
     * caller average over micro-batches as TRL averages over the whole batch.
     */
    public record Result(NDArray loss, double kl, int desirable, int undesirable,
                         double rewardsChosenSum, double rewardsRejectedSum, double logpsChosenSum, double logpsRejectedSum) {
    }

    /**
     * @param policy    [B] summed log-probs of each completion under the policy (in the graph)
     * @param reference [B] the same under the reference, no gradient
     * @param labels    [B] true for a desirable completion
     * @param policyKl  [B] the policy's log-probs of the mismatched pairs, or null when the loss needs no KL
     * @param referenceKl [B] the reference's log-probs of the mismatched pairs, or null
     */
    public static Result compute(NDArray policy, NDArray reference, boolean[] labels, NDArray policyKl, NDArray referenceKl, Objective objective) {
        NDManager m = policy.getManager();
        int n = labels.length;
        float[] up = new float[n], down = new float[n];
        int desirable = 0;
        for (int i = 0; i < n; i++) {
            up[i] = labels[i] ? 1f : 0f;
            down[i] = labels[i] ? 0f : 1f;
            if (labels[i]) desirable++;
        }
        NDArray isUp = m.create(up), isDown = m.create(down);
        NDArray one = m.create(1f);
        NDArray b = m.create((float) objective.beta());
        NDArray rho = policy.sub(reference);
        double kl = 0;
        if (objective.type().usesKl()) {
            // a reference point, not a target: no gradient flows through it (TRL detaches it)
            kl = Math.max(0, policyKl.stopGradient().sub(referenceKl.stopGradient()).mean().getFloat());
        }
        NDArray z = m.create((float) kl);
        NDArray lossUp, lossDown;
        if (objective.type() == Type.KTO) {
            lossUp = one.sub(sigmoid(rho.sub(z).mul(b)));
            lossDown = one.sub(sigmoid(z.sub(rho).mul(b)));
        } else {
            lossUp = one.sub(sigmoid(rho.mul(b)));
            lossDown = sigmoid(rho.mul(b));
        }
        NDArray perExample = lossUp.mul(isUp).mul(m.create((float) objective.desirableWeight()))
                .add(lossDown.mul(isDown).mul(m.create((float) objective.undesirableWeight())));
        NDArray loss = perExample.mean();
        float[] rewards = rho.stopGradient().mul(b).toFloatArray();
        float[] logps = policy.stopGradient().toFloatArray();
        double rc = 0, rr = 0, lc = 0, lr = 0;
        for (int i = 0; i < n; i++) {
            if (labels[i]) {
                rc += rewards[i];
                lc += logps[i];
            } else {
                rr += rewards[i];
                lr += logps[i];
            }
        }
        return new Result(loss, kl, desirable, n - desirable, rc, rr, lc, lr);
    }

    private static NDArray sigmoid(NDArray x) {
        return DpoLoss.logSigmoid(x).exp();
    }
}
