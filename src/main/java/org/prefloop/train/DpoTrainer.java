package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import org.prefloop.model.LlamaModel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * DPO. With a LoRA policy the reference model is the same weights with the adapter switched off,
 * so no second copy is held; its log-probs are computed with gradients off (no graph is kept).
 * Reference log-probs can instead be precomputed once ({@link #withReference}), which full
 * fine-tuning requires (its base moves). A step may be split into micro-batches whose gradients
 * accumulate; each micro-batch's loss is scaled by its share of the batch's weight, so the update
 * equals one big batch's.
 */
public final class DpoTrainer implements AutoCloseable {

    /** One preference pair as token ids, its weight, and the reference log-probs when precomputed (else NaN). */
    public record Pair(long[] prompt, long[] chosen, long[] rejected, double weight, double refChosen, double refRejected) {
        public Pair(long[] prompt, long[] chosen, long[] rejected, double weight) {
            this(prompt, chosen, rejected, weight, Double.NaN, Double.NaN);
        }

        boolean hasReference() {
            return !Double.isNaN(refChosen) && !Double.isNaN(refRejected);
        }

        int tokens() {
            return 2 * prompt.length + chosen.length + rejected.length;
        }
    }

    /** The objective (loss types, weights, beta, label smoothing) and gradient clipping, under TRL's DPOConfig names. */
    public record Settings(DpoLoss.Objective objective, double maxGradNorm) {
        public static Settings defaults() {
            return new Settings(DpoLoss.Objective.sigmoid(0.1), 1.0);
        }
    }

    /** What one step logged, with TRL's metric names in {@link #asTrlMetrics()}. */
    public record Step(long step, double loss, double rewardsChosen, double rewardsRejected, double rewardAccuracy,
                       double rewardMargin, double logpsChosen, double logpsRejected, double learningRate, double gradNorm,
                       int tokens, double tokensPerSecond) {
        public Map<String, Double> asTrlMetrics() {
            Map<String, Double> m = new LinkedHashMap<>();
            m.put("loss", loss);
            m.put("rewards/chosen", rewardsChosen);
            m.put("rewards/rejected", rewardsRejected);
            m.put("rewards/accuracies", rewardAccuracy);
            m.put("rewards/margins", rewardMargin);
            m.put("logps/chosen", logpsChosen);
            m.put("logps/rejected", logpsRejected);
            m.put("learning_rate", learningRate);
            m.put("grad_norm", gradNorm);
            m.put("tokens_per_second", tokensPerSecond);
            return m;
        }
    }

    private final LlamaModel model;
    private final Trainable policy;
    private final AdamW optimizer;
    private final Settings settings;

    public DpoTrainer(LlamaModel model, Trainable policy, AdamW optimizer, Settings settings) {
        this.model = model;
        this.policy = policy;
        this.optimizer = optimizer;
        this.settings = settings;
        TrainingAllocator.apply();
    }

    /** The pairs with their reference log-probs computed now, by the model as it is with no hook (gradients off). */
    public static List<Pair> withReference(LlamaModel model, List<Pair> pairs, int batchSize) {
        JniUtils.setGradMode(false);
        var hook = model.projectionHook();
        model.setProjectionHook(null);
        List<Pair> out = new ArrayList<>(pairs.size());
        try {
            for (int i = 0; i < pairs.size(); i += batchSize) {
                List<Pair> batch = pairs.subList(i, Math.min(pairs.size(), i + batchSize));
                try (NDManager scope = model.manager().newSubManager()) {
                    float[] lp = SequenceLogProbs.of(model, sequences(batch), scope).toFloatArray();
                    for (int j = 0; j < batch.size(); j++) {
                        Pair p = batch.get(j);
                        out.add(new Pair(p.prompt(), p.chosen(), p.rejected(), p.weight(), lp[j], lp[batch.size() + j]));
                    }
                }
            }
        } finally {
            model.setProjectionHook(hook);
        }
        return out;
    }

    /** Loss and reward metrics of the current policy on {@code pairs}, without training (held-out evaluation). */
    public Step evaluate(List<Pair> pairs, int batchSize) {
        Totals t = new Totals();
        double totalWeight = pairs.stream().mapToDouble(Pair::weight).sum();
        JniUtils.setGradMode(false);
        for (int i = 0; i < pairs.size(); i += batchSize) {
            List<Pair> batch = pairs.subList(i, Math.min(pairs.size(), i + batchSize));
            double share = batch.stream().mapToDouble(Pair::weight).sum() / totalWeight;
            try (NDManager scope = model.manager().newSubManager()) {
                NDArray[] ref = reference(batch, scope);
                model.setProjectionHook(policy.hook(false));
                NDArray logps = SequenceLogProbs.of(model, sequences(batch), scope);
                t.add(loss(batch, logps, ref, scope, share), batch.size());
            }
        }
        return t.step(optimizer.step(), 0, 0, 0, 0);
    }

    /** How likely the chosen answers are: the mean log-prob per chosen token, and the mean log-prob of each answer's last (end) token. */
    public record Likelihood(double chosenPerToken, double endOfAnswer) {
    }

    /**
     * The chosen answers' likelihood under the policy, or under the reference ({@code policy} false:
     * the model with no hook). DPO can lower it while the reward margin grows, which is how a run
     * that reports perfect reward accuracy still answers worse (likelihood displacement).
     */
    public Likelihood chosenLikelihood(List<Pair> pairs, int batchSize, boolean policy) {
        JniUtils.setGradMode(false);
        double logps = 0, ends = 0;
        long tokens = 0;
        for (int i = 0; i < pairs.size(); i += batchSize) {
            List<Pair> batch = pairs.subList(i, Math.min(pairs.size(), i + batchSize));
            List<SequenceLogProbs.Sequence> seqs = new ArrayList<>(2 * batch.size());
            for (Pair p : batch) seqs.add(SequenceLogProbs.Sequence.of(p.prompt(), p.chosen()));
            for (Pair p : batch) seqs.add(lastTokenOnly(SequenceLogProbs.Sequence.of(p.prompt(), p.chosen())));
            try (NDManager scope = model.manager().newSubManager()) {
                model.setProjectionHook(policy ? this.policy.hook(false) : null);
                float[] lp = SequenceLogProbs.of(model, seqs, scope).toFloatArray();
                for (int j = 0; j < batch.size(); j++) {
                    logps += lp[j];
                    ends += lp[batch.size() + j];
                    tokens += batch.get(j).chosen().length;
                }
            }
        }
        return new Likelihood(logps / Math.max(1, tokens), ends / Math.max(1, pairs.size()));
    }

    private static SequenceLogProbs.Sequence lastTokenOnly(SequenceLogProbs.Sequence s) {
        boolean[] scored = new boolean[s.length()];
        scored[s.length() - 1] = true;
        return new SequenceLogProbs.Sequence(s.ids(), scored);
    }

    /** One optimizer step over {@code batch}, split into {@code accumulation} micro-batches, at learning rate {@code lr}. */
    public Step step(List<Pair> batch, int accumulation, double lr) {
        long start = System.nanoTime();
        double totalWeight = batch.stream().mapToDouble(Pair::weight).sum();
        if (!(totalWeight > 0)) throw new IllegalArgumentException("the pairs' weights must sum to a positive number");
        Totals t = new Totals();
        for (List<Pair> micro : MicroBatches.split(batch, accumulation)) {
            double share = micro.stream().mapToDouble(Pair::weight).sum() / totalWeight;
            try (NDManager scope = model.manager().newSubManager()) {
                NDArray[] ref = reference(micro, scope);
                model.setProjectionHook(policy.hook(true));
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDArray logps = SequenceLogProbs.of(model, sequences(micro), scope);
                    DpoLoss.Result r = loss(micro, logps, ref, scope, share);
                    collector.backward(r.loss());
                    model.backwardCheckpoints();
                    t.add(r, micro.size());
                }
            }
        }
        if (!Double.isFinite(t.loss)) throw new IllegalStateException("DPO loss is " + t.loss + " at step " + (optimizer.step() + 1));
        double norm = AdamW.clipGradNorm(new ArrayList<>(policy.parameters().values()), settings.maxGradNorm());
        if (!Double.isFinite(norm)) throw new IllegalStateException("gradient norm is " + norm + " at step " + (optimizer.step() + 1));
        optimizer.update(policy.parameters(), lr);
        int tokens = batch.stream().mapToInt(Pair::tokens).sum();
        return t.step(optimizer.step(), lr, norm, tokens, tokens / ((System.nanoTime() - start) / 1e9));
    }

    /** [chosen, rejected] reference log-probs: precomputed ones, or the model with no hook, gradients off. */
    private NDArray[] reference(List<Pair> batch, NDManager scope) {
        int b = batch.size();
        if (!settings.objective().usesReference()) return new NDArray[]{scope.zeros(new ai.djl.ndarray.types.Shape(b)), scope.zeros(new ai.djl.ndarray.types.Shape(b))};
        if (batch.stream().allMatch(Pair::hasReference)) {
            float[] c = new float[b], r = new float[b];
            for (int i = 0; i < b; i++) {
                c[i] = (float) batch.get(i).refChosen();
                r[i] = (float) batch.get(i).refRejected();
            }
            return new NDArray[]{scope.create(c), scope.create(r)};
        }
        if (policy.adapter() == null) throw new IllegalStateException("full fine-tuning DPO needs precomputed reference log-probs");
        boolean grad = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        model.setProjectionHook(null);
        NDArray lp = SequenceLogProbs.of(model, sequences(batch), scope);
        JniUtils.setGradMode(grad);
        return new NDArray[]{lp.get(new NDIndex("0:" + b)), lp.get(new NDIndex(b + ":"))};
    }

    private DpoLoss.Result loss(List<Pair> batch, NDArray logps, NDArray[] ref, NDManager scope, double share) {
        int b = batch.size();
        float[] w = new float[b], chosenTokens = new float[b], rejectedTokens = new float[b];
        for (int i = 0; i < b; i++) {
            w[i] = (float) batch.get(i).weight();
            chosenTokens[i] = batch.get(i).chosen().length;
            rejectedTokens[i] = batch.get(i).rejected().length;
        }
        DpoLoss.Result r = DpoLoss.compute(logps.get(new NDIndex("0:" + b)), logps.get(new NDIndex(b + ":")), ref[0], ref[1],
                scope.create(chosenTokens), scope.create(rejectedTokens), scope.create(w), settings.objective());
        if (share == 1.0) return r;
        return new DpoLoss.Result(r.loss().mul(scope.create((float) share)), r.rewardsChosen(), r.rewardsRejected(),
                r.rewardAccuracy(), r.rewardMargin(), r.logpsChosen(), r.logpsRejected());
    }

    private static List<SequenceLogProbs.Sequence> sequences(List<Pair> batch) {
        List<SequenceLogProbs.Sequence> out = new ArrayList<>(2 * batch.size());
        for (Pair p : batch) out.add(SequenceLogProbs.Sequence.of(p.prompt(), p.chosen()));
        for (Pair p : batch) out.add(SequenceLogProbs.Sequence.of(p.prompt(), p.rejected()));
        return out;
    }

    /** Sums a step's micro-batch results: the loss adds up (already scaled), metrics average by pair count. */
    private static final class Totals {
        double loss, chosen, rejected, accuracy, margin, logpsChosen, logpsRejected;
        int pairs;

        void add(DpoLoss.Result r, int n) {
            loss += r.loss().getFloat();
            chosen += r.rewardsChosen() * n;
            rejected += r.rewardsRejected() * n;
            accuracy += r.rewardAccuracy() * n;
            margin += r.rewardMargin() * n;
            logpsChosen += r.logpsChosen() * n;
            logpsRejected += r.logpsRejected() * n;
            pairs += n;
        }

        Step step(long step, double lr, double norm, int tokens, double tokensPerSecond) {
            return new Step(step, loss, chosen / pairs, rejected / pairs, accuracy / pairs, margin / pairs,
                    logpsChosen / pairs, logpsRejected / pairs, lr, norm, tokens, tokensPerSecond);
        }
    }

    @Override
    public void close() {
        model.setProjectionHook(null);
    }
}
