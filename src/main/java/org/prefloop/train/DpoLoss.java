package org.prefloop.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The DPO objectives, with TRL's names ({@code DPOConfig.loss_type}, a list combined with
 * {@code loss_weights}) and TRL's metrics. Per pair, with the log-ratios {@code c = log πθ(y_w) -
 * log π_ref(y_w)}, {@code r = log πθ(y_l) - log π_ref(y_l)} and {@code h = c - r}:
 * <ul>
 *   <li>{@code sigmoid}: {@code -log σ(βh)}</li>
 *   <li>{@code hinge}: {@code max(0, 1 - βh)}</li>
 *   <li>{@code ipo}: {@code (c/|y_w| - r/|y_l| - 1/(2β))²}: log-ratios averaged over each completion's tokens, as TRL does</li>
 *   <li>{@code robust}: {@code (-(1-ε) log σ(βh) + ε log σ(-βh)) / (1 - 2ε)}, ε = label_smoothing (the chance a label is flipped)</li>
 *   <li>{@code bco_pair}: {@code -log σ(βc) - log σ(-βr)}</li>
 *   <li>{@code sppo_hard}: {@code (c - 1/(2β))² + (r + 1/(2β))²}</li>
 *   <li>{@code nca_pair}: {@code -log σ(βc) - ½ log σ(-βc) - ½ log σ(-βr)}</li>
 *   <li>{@code apo_zero}: {@code 1 - σ(βc) + σ(βr)}</li>
 *   <li>{@code apo_down}: {@code σ(βc) + 1 - σ(βh)}</li>
 *   <li>{@code sigmoid_norm}: {@code -log σ(β(c/|y_w| - r/|y_l|))}</li>
 *   <li>{@code simpo} (TRL's CPOTrainer, {@code loss_type: simpo}): {@code -log σ(β(ā_w - ā_l) - γ)}
 *       with ā the policy's mean log-prob per completion token and γ = simpo_gamma; no reference</li>
 *   <li>{@code orpo} (TRL's ORPOTrainer): the chosen answers' NLL per token plus {@code -β log σ(log odds(y_w) -
 *       log odds(y_l))}, odds from the mean log-prob per token, {@code odds = p / (1 - p)}; no reference</li>
 *   <li>{@code sft}: the chosen answers' negative log-likelihood per token, a batch term (RPO's
 *       {@code rpo_alpha} is this term with that weight): it keeps DPO from lowering the
 *       likelihood of the preferred answers along with the rejected ones</li>
 * </ul>
 * Each pair's loss is scaled by its weight (e.g. annotator agreement), the batch loss of a term is
 * the weighted mean, and the objective is the {@code loss_weights}-weighted sum of its terms.
 * Every constant is a tensor of the arrays' own manager: a Java number handed to an op inside an
 * autograd graph can be freed before backward (why: docs/ARCHITECTURE.md, "The packages").
 */
public final class DpoLoss {
    private DpoLoss() {
    }

    public enum Type {
        SIGMOID, HINGE, IPO, ROBUST, BCO_PAIR, SPPO_HARD, NCA_PAIR, APO_ZERO, APO_DOWN, SIGMOID_NORM, SIMPO, ORPO, SFT;

        /** Whether the loss compares the policy with a reference model (SimPO, ORPO and SFT do not). */
        boolean usesReference() {
            return this != SIMPO && this != ORPO && this != SFT;
        }

        /** TRL's spelling: {@code sigmoid}, {@code bco_pair}, ... */
        public String trlName() {
            return name().toLowerCase(Locale.ROOT);
        }

        public static Type parse(String name) {
            for (Type t : values()) if (t.trlName().equals(name)) return t;
            List<String> names = new ArrayList<>();
            for (Type t : values()) names.add(t.trlName());
            throw new IllegalArgumentException("loss_type must be among " + String.join(", ", names) + "; got '" + name + "'");
        }
    }

    /** One term of the objective and its weight. */
    public record Term(Type type, double weight) {
    }

    /**
     * The whole objective: its terms, β and label smoothing, checked as TRL checks them.
     * {@code rpoAlpha} is the older spelling of an {@code sft} term with that weight.
     */
    public record Objective(List<Term> terms, double beta, double labelSmoothing, double simpoGamma) {
        public Objective(List<Term> terms, double beta, double labelSmoothing) {
            this(terms, beta, labelSmoothing, 0.5);
        }

        public Objective {
            terms = List.copyOf(terms);
            if (terms.isEmpty()) throw new IllegalArgumentException("loss_type must name at least one loss");
            if (!(beta > 0)) throw new IllegalArgumentException("beta must be positive");
            if (!(labelSmoothing >= 0 && labelSmoothing < 0.5)) throw new IllegalArgumentException("label_smoothing must be in [0, 0.5)");
            if (labelSmoothing > 0 && terms.stream().noneMatch(t -> t.type() == Type.ROBUST)) {
                throw new IllegalArgumentException("label_smoothing applies to loss_type robust only (TRL's sigmoid ignores it); "
                        + "for conservative DPO use loss_type: robust");
            }
            for (Term t : terms) {
                if (!(t.weight() >= 0) || Double.isInfinite(t.weight())) throw new IllegalArgumentException("loss_weights must be finite and not negative");
            }
            if (terms.stream().allMatch(t -> t.type() == Type.SFT)) throw new IllegalArgumentException("loss_type needs a preference loss beside sft");
            if (has(terms, Type.ORPO) && has(terms, Type.SFT)) throw new IllegalArgumentException("orpo already holds the chosen answers' NLL; drop sft");
        }

        private static boolean has(List<Term> terms, Type type) {
            return terms.stream().anyMatch(t -> t.type() == type);
        }

        /** Whether any term needs the reference model's log-probs (else its forward pass is skipped). */
        public boolean usesReference() {
            return terms.stream().anyMatch(t -> t.type().usesReference());
        }

        public static Objective of(List<String> lossTypes, List<Double> lossWeights, double rpoAlpha, double beta, double labelSmoothing) {
            return of(lossTypes, lossWeights, rpoAlpha, beta, labelSmoothing, 0.5);
        }

        public static Objective of(List<String> lossTypes, List<Double> lossWeights, double rpoAlpha, double beta, double labelSmoothing,
                                   double simpoGamma) {
            if (lossWeights != null && lossWeights.size() != lossTypes.size()) {
                throw new IllegalArgumentException("loss_weights must have one weight per loss_type: " + lossWeights.size() + " for " + lossTypes.size());
            }
            List<Term> terms = new ArrayList<>();
            for (int i = 0; i < lossTypes.size(); i++) {
                Type t = Type.parse(lossTypes.get(i));
                if (terms.stream().anyMatch(x -> x.type() == t)) throw new IllegalArgumentException("loss_type names " + t.trlName() + " twice");
                terms.add(new Term(t, lossWeights == null ? 1.0 : lossWeights.get(i)));
            }
            if (rpoAlpha < 0) throw new IllegalArgumentException("rpo_alpha must not be negative");
            if (rpoAlpha > 0) {
                if (terms.stream().anyMatch(x -> x.type() == Type.SFT)) throw new IllegalArgumentException("rpo_alpha and an sft loss_type say the same thing; keep one");
                terms.add(new Term(Type.SFT, rpoAlpha));
            }
            return new Objective(terms, beta, labelSmoothing, simpoGamma);
        }

        public static Objective sigmoid(double beta) {
            return new Objective(List.of(new Term(Type.SIGMOID, 1)), beta, 0);
        }

        public List<String> names() {
            return terms.stream().map(t -> t.type().trlName()).toList();
        }

        public List<Double> weights() {
            return terms.stream().map(Term::weight).toList();
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
     * @param chosenTokens   [B] scored tokens of each chosen completion
     * @param rejectedTokens [B] scored tokens of each rejected completion
     * @param weights        [B] per-pair weights, or null for 1
     */
    public static Result compute(NDArray policyChosen, NDArray policyRejected, NDArray refChosen, NDArray refRejected,
                                 NDArray chosenTokens, NDArray rejectedTokens, NDArray weights, Objective objective) {
        NDManager m = policyChosen.getManager();
        NDArray b = m.create((float) objective.beta());
        NDArray c = policyChosen.sub(refChosen);
        NDArray r = policyRejected.sub(refRejected);
        NDArray h = c.sub(r);
        NDArray w = weights == null ? m.ones(c.getShape()) : weights;
        NDArray loss = null;
        for (Term term : objective.terms()) {
            NDArray nll = policyChosen.mul(w).sum().neg().div(chosenTokens.mul(w).sum());
            NDArray termLoss = switch (term.type()) {
                case SFT -> nll;
                case SIMPO -> {
                    NDArray margin = perToken(policyChosen, chosenTokens).sub(perToken(policyRejected, rejectedTokens)).mul(b)
                            .sub(m.create((float) objective.simpoGamma()));
                    yield weightedMean(logSigmoid(margin).neg(), w);
                }
                case ORPO -> nll.add(weightedMean(logSigmoid(logOdds(policyChosen, chosenTokens).sub(logOdds(policyRejected, rejectedTokens))).neg(), w).mul(b));
                default -> weightedMean(perPair(term.type(), c, r, h, b, chosenTokens, rejectedTokens, objective.labelSmoothing()), w);
            };
            termLoss = termLoss.mul(m.create((float) term.weight()));
            loss = loss == null ? termLoss : loss.add(termLoss);
        }
        NDArray rc = c.mul(b);
        NDArray rr = r.mul(b);
        return new Result(loss, mean(rc), mean(rr), mean(rc.gt(rr).toType(DataType.FLOAT32, false)),
                mean(rc.sub(rr)), mean(policyChosen), mean(policyRejected));
    }

    private static NDArray perPair(Type type, NDArray c, NDArray r, NDArray h, NDArray b,
                                   NDArray chosenTokens, NDArray rejectedTokens, double labelSmoothing) {
        NDManager m = c.getManager();
        NDArray one = m.create(1f);
        NDArray half = m.create(0.5f);
        NDArray halfOverBeta = half.div(b);
        return switch (type) {
            case SIGMOID -> logSigmoid(h.mul(b)).neg();
            case HINGE -> one.sub(h.mul(b)).maximum(m.create(0f));
            case IPO -> perToken(c, chosenTokens).sub(perToken(r, rejectedTokens)).sub(halfOverBeta).square();
            case ROBUST -> {
                NDArray eps = m.create((float) labelSmoothing);
                NDArray clean = logSigmoid(h.mul(b)).mul(one.sub(eps)).neg();
                NDArray flipped = logSigmoid(h.mul(b).neg()).mul(eps).neg();
                yield clean.sub(flipped).div(one.sub(eps.mul(m.create(2f))));
            }
            case BCO_PAIR -> logSigmoid(c.mul(b)).add(logSigmoid(r.mul(b).neg())).neg();
            case SPPO_HARD -> c.sub(halfOverBeta).square().add(r.add(halfOverBeta).square());
            case NCA_PAIR -> logSigmoid(c.mul(b)).neg()
                    .sub(logSigmoid(c.mul(b).neg()).mul(half))
                    .sub(logSigmoid(r.mul(b).neg()).mul(half));
            case APO_ZERO -> one.sub(sigmoid(c.mul(b))).add(sigmoid(r.mul(b)));
            case APO_DOWN -> sigmoid(c.mul(b)).add(one.sub(sigmoid(h.mul(b))));
            case SIGMOID_NORM -> logSigmoid(perToken(c, chosenTokens).sub(perToken(r, rejectedTokens)).mul(b)).neg();
            case SFT, SIMPO, ORPO -> throw new IllegalArgumentException(type.trlName() + " is computed in compute()");
        };
    }

    private static NDArray weightedMean(NDArray perPair, NDArray w) {
        return perPair.mul(w).sum().div(w.sum());
    }

    /** log(p / (1 - p)) for p the mean per-token probability of a completion, as ORPO defines its odds. */
    private static NDArray logOdds(NDArray summedLogps, NDArray tokens) {
        NDArray mean = perToken(summedLogps, tokens);
        return mean.sub(summedLogps.getManager().create(1f).sub(mean.exp()).log());
    }

    private static NDArray perToken(NDArray logRatio, NDArray tokens) {
        return logRatio.div(tokens.maximum(tokens.getManager().create(1f)));
    }

    /** log σ(x) = -softplus(-x), written to stay finite for large |x|. */
    static NDArray logSigmoid(NDArray x) {
        NDArray zero = x.getManager().create(0f);
        // -softplus(-x) = min(x, 0) - log(1 + exp(-|x|))
        return x.minimum(zero).sub(x.abs().neg().exp().add(x.getManager().create(1f)).log());
    }

    private static NDArray sigmoid(NDArray x) {
        return logSigmoid(x).exp();
    }

    private static double mean(NDArray a) {
        return a.stopGradient().mean().getFloat();
    }
}
