package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * DPO on a LoRA adapter. The reference model is the same weights with the adapter switched
 * off, so no second copy is held; its log-probs are computed with gradients off (no graph is
 * kept). Only the adapter's matrices are trained: the base receives no gradient and no
 * optimizer state, and stays bit-identical.
 */
public final class DpoTrainer implements AutoCloseable {

    /** One preference pair as token ids, with its weight (1 unless, say, annotator agreement says otherwise). */
    public record Pair(long[] prompt, long[] chosen, long[] rejected, double weight) {
    }

    /** Hyperparameters under TRL's DPOConfig names where there is one. */
    public record Settings(double beta, DpoLoss.Type lossType, double labelSmoothing, double learningRate, double maxGradNorm) {
        public static Settings defaults() {
            return new Settings(0.1, DpoLoss.Type.SIGMOID, 0.0, 2e-4, 1.0);
        }
    }

    /** What one step logged, with TRL's metric names in {@link #asTrlMetrics()}. */
    public record Step(long step, double loss, double rewardsChosen, double rewardsRejected, double rewardAccuracy,
                       double rewardMargin, double logpsChosen, double logpsRejected, double learningRate, double gradNorm,
                       double tokensPerSecond) {
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
    private final LoraAdapter policy;
    private final Settings settings;
    private final AdamW optimizer = AdamW.defaults();
    private final Map<String, NDArray> trainable = new LinkedHashMap<>();

    public DpoTrainer(LlamaModel model, LoraAdapter policy, Settings settings) {
        this.model = model;
        this.policy = policy;
        this.settings = settings;
        policy.weights().forEach((module, ab) -> {
            ab[0].setRequiresGradient(true);
            ab[1].setRequiresGradient(true);
            trainable.put(module + ".lora_A", ab[0]);
            trainable.put(module + ".lora_B", ab[1]);
        });
    }

    /** One optimizer step on a batch of pairs. */
    public Step step(List<Pair> batch) {
        long start = System.nanoTime();
        int b = batch.size();
        List<SequenceLogProbs.Sequence> sequences = new ArrayList<>(2 * b);
        for (Pair p : batch) sequences.add(new SequenceLogProbs.Sequence(p.prompt(), p.chosen()));
        for (Pair p : batch) sequences.add(new SequenceLogProbs.Sequence(p.prompt(), p.rejected()));
        int tokens = sequences.stream().mapToInt(SequenceLogProbs.Sequence::length).sum();
        try (NDManager scope = model.manager().newSubManager()) {
            JniUtils.setGradMode(false);
            model.setProjectionHook(null);
            NDArray reference = SequenceLogProbs.of(model, sequences, scope);
            model.setProjectionHook(policy.hook());
            NDArray weights = scope.create(toFloats(batch));
            DpoLoss.Result r;
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                NDArray logps = SequenceLogProbs.of(model, sequences, scope);
                r = DpoLoss.compute(logps.get(new NDIndex("0:" + b)), logps.get(new NDIndex(b + ":")),
                        reference.get(new NDIndex("0:" + b)), reference.get(new NDIndex(b + ":")),
                        weights, settings.beta(), settings.lossType(), settings.labelSmoothing());
                collector.backward(r.loss());
            }
            double loss = r.loss().getFloat();
            if (!Double.isFinite(loss)) throw new IllegalStateException("DPO loss is " + loss + " at step " + (optimizer.step() + 1));
            double norm = AdamW.clipGradNorm(new ArrayList<>(trainable.values()), settings.maxGradNorm());
            if (!Double.isFinite(norm)) throw new IllegalStateException("gradient norm is " + norm + " at step " + (optimizer.step() + 1));
            optimizer.update(trainable, settings.learningRate());
            double seconds = (System.nanoTime() - start) / 1e9;
            return new Step(optimizer.step(), loss, r.rewardsChosen(), r.rewardsRejected(), r.rewardAccuracy(), r.rewardMargin(),
                    r.logpsChosen(), r.logpsRejected(), settings.learningRate(), norm, tokens / seconds);
        }
    }

    private static float[] toFloats(List<Pair> batch) {
        float[] w = new float[batch.size()];
        for (int i = 0; i < w.length; i++) w[i] = (float) batch.get(i).weight();
        return w;
    }

    @Override
    public void close() {
        optimizer.close();
        model.setProjectionHook(null);
    }
}
