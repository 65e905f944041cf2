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
 * KTO with a LoRA policy: the reference is the same weights with the adapter switched off. Per
 * micro-batch, as TRL's KTOTrainer: the completions' log-probs under the policy (with gradients)
 * and the reference, and for the KL reference point the mismatched pairs, prompt i with the
 * completion of example i-1 of the same micro-batch (TRL rotates completions by one within each
 * batch of {@code per_device_train_batch_size}), under both models with gradients off. TRL builds
 * the rotation once over the unshuffled data; here it is built per micro-batch after the seeded
 * shuffle, which gives what TRL asks of it (the mismatched completions are the batch's own).
 */
public final class KtoTrainer implements AutoCloseable {

    /** One unpaired example: a prompt, a completion, and whether the completion is desirable (thumbs up). */
    public record Example(long[] prompt, long[] completion, boolean label) {
        int tokens() {
            return prompt.length + completion.length;
        }
    }

    /** What one step logged, with TRL's KTO metric names in {@link #asTrlMetrics()}; NaN where the batch had no such example. */
    public record Step(long step, double loss, double kl, double rewardsChosen, double rewardsRejected, double logpsChosen,
                       double logpsRejected, double learningRate, double gradNorm, int tokens, double tokensPerSecond) {
        public Map<String, Double> asTrlMetrics() {
            Map<String, Double> m = new LinkedHashMap<>();
            m.put("loss", loss);
            m.put("kl", kl);
            if (!Double.isNaN(rewardsChosen)) {
                m.put("rewards/chosen", rewardsChosen);
                m.put("logps/chosen", logpsChosen);
            }
            if (!Double.isNaN(rewardsRejected)) {
                m.put("rewards/rejected", rewardsRejected);
                m.put("logps/rejected", logpsRejected);
            }
            if (!Double.isNaN(rewardsChosen) && !Double.isNaN(rewardsRejected)) m.put("rewards/margins", rewardsChosen - rewardsRejected);
            m.put("learning_rate", learningRate);
            m.put("grad_norm", gradNorm);
            m.put("tokens_per_second", tokensPerSecond);
            return m;
        }
    }

    private final LlamaModel model;
    private final Trainable policy;
    private final AdamW optimizer;
    private final KtoLoss.Objective objective;
    private final double maxGradNorm;

    public KtoTrainer(LlamaModel model, Trainable policy, AdamW optimizer, KtoLoss.Objective objective, double maxGradNorm) {
        if (policy.adapter() == null) throw new IllegalArgumentException("KTO here trains a LoRA adapter (use_peft: true): its reference is the model with the adapter off");
        this.model = model;
        this.policy = policy;
        this.optimizer = optimizer;
        this.objective = objective;
        this.maxGradNorm = maxGradNorm;
        TrainingAllocator.apply();
    }

    /** One optimizer step over {@code batch}, split into {@code accumulation} micro-batches, at learning rate {@code lr}. */
    public Step step(List<Example> batch, int accumulation, double lr) {
        long start = System.nanoTime();
        Totals t = new Totals();
        for (List<Example> micro : MicroBatches.split(batch, accumulation)) {
            // each micro-batch's mean loss weighs by its share of the batch, so accumulation equals one big batch
            double share = (double) micro.size() / batch.size();
            try (NDManager scope = model.manager().newSubManager()) {
                Frozen frozen = frozen(micro, scope);
                model.setProjectionHook(policy.hook(true));
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDArray logps = SequenceLogProbs.of(model, matched(micro), scope);
                    KtoLoss.Result r = KtoLoss.compute(logps, frozen.reference, labels(micro), frozen.policyKl, frozen.referenceKl, objective);
                    NDArray scaled = share == 1.0 ? r.loss() : r.loss().mul(scope.create((float) share));
                    collector.backward(scaled);
                    t.add(r, scaled.getFloat());
                }
            }
        }
        if (!Double.isFinite(t.loss)) throw new IllegalStateException("KTO loss is " + t.loss + " at step " + (optimizer.step() + 1));
        double norm = AdamW.clipGradNorm(new ArrayList<>(policy.parameters().values()), maxGradNorm);
        if (!Double.isFinite(norm)) throw new IllegalStateException("gradient norm is " + norm + " at step " + (optimizer.step() + 1));
        optimizer.update(policy.parameters(), lr);
        int tokens = batch.stream().mapToInt(Example::tokens).sum();
        return t.step(optimizer.step(), lr, norm, tokens, tokens / ((System.nanoTime() - start) / 1e9));
    }

    /** Loss and metrics of the current policy on {@code examples}, without training, in batches of {@code batchSize}. */
    public Step evaluate(List<Example> examples, int batchSize) {
        Totals t = new Totals();
        JniUtils.setGradMode(false);
        for (int i = 0; i < examples.size(); i += batchSize) {
            List<Example> batch = examples.subList(i, Math.min(examples.size(), i + batchSize));
            double share = (double) batch.size() / examples.size();
            try (NDManager scope = model.manager().newSubManager()) {
                Frozen frozen = frozen(batch, scope);
                model.setProjectionHook(policy.hook(false));
                NDArray logps = SequenceLogProbs.of(model, matched(batch), scope);
                KtoLoss.Result r = KtoLoss.compute(logps, frozen.reference, labels(batch), frozen.policyKl, frozen.referenceKl, objective);
                t.add(r, r.loss().getFloat() * share);
            }
        }
        return t.step(optimizer.step(), 0, 0, 0, 0);
    }

    private record Frozen(NDArray reference, NDArray policyKl, NDArray referenceKl) {
    }

    /** What carries no gradient: the reference's log-probs of the matched and mismatched pairs, and the policy's of the mismatched. */
    private Frozen frozen(List<Example> batch, NDManager scope) {
        int b = batch.size();
        boolean grad = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try {
            boolean kl = objective.type().usesKl();
            List<SequenceLogProbs.Sequence> seqs = new ArrayList<>(matched(batch));
            if (kl) seqs.addAll(mismatched(batch));
            model.setProjectionHook(null);
            NDArray ref = SequenceLogProbs.of(model, seqs, scope);
            if (!kl) return new Frozen(ref, null, null);
            model.setProjectionHook(policy.hook(false));
            NDArray policyKl = SequenceLogProbs.of(model, mismatched(batch), scope);
            return new Frozen(ref.get(new NDIndex("0:" + b)), policyKl, ref.get(new NDIndex(b + ":")));
        } finally {
            JniUtils.setGradMode(grad);
        }
    }

    private static List<SequenceLogProbs.Sequence> matched(List<Example> batch) {
        List<SequenceLogProbs.Sequence> out = new ArrayList<>(batch.size());
        for (Example e : batch) out.add(SequenceLogProbs.Sequence.of(e.prompt(), e.completion()));
        return out;
    }

    /** Prompt i with the completion of example i-1 (the last example's for the first): TRL's rotation by one. */
    static List<SequenceLogProbs.Sequence> mismatched(List<Example> batch) {
        int b = batch.size();
        List<SequenceLogProbs.Sequence> out = new ArrayList<>(b);
        for (int i = 0; i < b; i++) out.add(SequenceLogProbs.Sequence.of(batch.get(i).prompt(), batch.get((i - 1 + b) % b).completion()));
        return out;
    }

    private static boolean[] labels(List<Example> batch) {
        boolean[] out = new boolean[batch.size()];
        for (int i = 0; i < out.length; i++) out[i] = batch.get(i).label();
        return out;
    }

    /** Sums a step's micro-batch results: the loss adds up (already scaled), the KL averages per micro-batch, rewards per example. */
    private static final class Totals {
        double loss, kl, rc, rr, lc, lr;
        int up, down, parts;

        void add(KtoLoss.Result r, double scaledLoss) {
            loss += scaledLoss;
            kl += r.kl();
            parts++;
            rc += r.rewardsChosenSum();
            rr += r.rewardsRejectedSum();
            lc += r.logpsChosenSum();
            lr += r.logpsRejectedSum();
            up += r.desirable();
            down += r.undesirable();
        }

        Step step(long step, double learningRate, double norm, int tokens, double tokensPerSecond) {
            return new Step(step, loss, kl / Math.max(1, parts), up == 0 ? Double.NaN : rc / up, down == 0 ? Double.NaN : rr / down,
                    up == 0 ? Double.NaN : lc / up, down == 0 ? Double.NaN : lr / down, learningRate, norm, tokens, tokensPerSecond);
        }
    }

    @Override
    public void close() {
        model.setProjectionHook(null);
    }
}
