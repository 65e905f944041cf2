package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.TextTokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * Supervised fine-tuning: the loss is the mean negative log-likelihood per scored token (the
 * assistant turns of a conversation, the completion of a prompt-completion pair, or every token
 * of a plain-text document). A step may be split into micro-batches whose gradients accumulate;
 * the loss is normalised by the scored tokens of the whole step, so the update is the same as one
 * big batch.
 */
public final class SftTrainer implements AutoCloseable {
    private final LlamaModel model;
    private final Trainable trainable;
    private final AdamW optimizer;
    private final double maxGradNorm;

    /** What one optimizer step logged. */
    public record Step(long step, double loss, double gradNorm, double learningRate, int tokens, double tokensPerSecond) {
    }

    public SftTrainer(LlamaModel model, Trainable trainable, AdamW optimizer, double maxGradNorm) {
        this.model = model;
        this.trainable = trainable;
        this.optimizer = optimizer;
        this.maxGradNorm = maxGradNorm;
        TrainingAllocator.apply();
    }

    /**
     * Splits a conversation into the prompt (everything before the last assistant turn, with the
     * generation prompt) and the completion (that turn as the template renders it, end token included).
     */
    public static SequenceLogProbs.Sequence split(List<ChatTemplate.ChatMessage> messages, ChatTemplate template, TextTokenizer tokenizer) {
        if (messages.isEmpty() || !messages.get(messages.size() - 1).role().equals("assistant")) {
            throw new IllegalArgumentException("an SFT conversation must end with an assistant message");
        }
        String prompt = template.render(messages.subList(0, messages.size() - 1), true);
        String full = template.render(messages, false);
        if (!full.startsWith(prompt)) throw new IllegalArgumentException("the chat template does not render the prompt as a prefix of the conversation");
        return SequenceLogProbs.Sequence.of(tokenizer.encode(prompt), tokenizer.encodeContinuation(full.substring(prompt.length())));
    }

    /** Mean negative log-likelihood per scored token, without training (validation, forgetting). */
    public static double evaluate(LlamaModel model, List<SequenceLogProbs.Sequence> examples, int batchSize) {
        JniUtils.setGradMode(false);
        double nll = 0;
        long tokens = 0;
        for (int i = 0; i < examples.size(); i += batchSize) {
            List<SequenceLogProbs.Sequence> batch = examples.subList(i, Math.min(examples.size(), i + batchSize));
            try (NDManager scope = model.manager().newSubManager()) {
                nll -= SequenceLogProbs.of(model, batch, scope).sum().getFloat();
            }
            tokens += scoredTokens(batch);
        }
        return nll / Math.max(1, tokens);
    }

    /** Mean NLL per scored token with the trained weights applied. */
    public double evaluate(List<SequenceLogProbs.Sequence> examples, int batchSize) {
        model.setProjectionHook(trainable.hook(false));
        return evaluate(model, examples, batchSize);
    }

    /** One optimizer step over {@code batch}, split into {@code accumulation} micro-batches, at learning rate {@code lr}. */
    public Step step(List<SequenceLogProbs.Sequence> batch, int accumulation, double lr) {
        long start = System.nanoTime();
        model.setProjectionHook(trainable.hook(true));
        int tokens = scoredTokens(batch);
        if (tokens == 0) throw new IllegalArgumentException("a batch with no scored tokens has no loss");
        double loss = 0;
        for (List<SequenceLogProbs.Sequence> micro : MicroBatches.split(batch, accumulation)) {
            try (NDManager scope = model.manager().newSubManager();
                 GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                NDArray nll = SequenceLogProbs.of(model, micro, scope).sum().neg().div(scope.create((float) tokens));
                collector.backward(nll);
                model.backwardCheckpoints();
                loss += nll.getFloat();
            }
        }
        if (!Double.isFinite(loss)) throw new IllegalStateException("SFT loss is " + loss + " at step " + (optimizer.step() + 1));
        List<NDArray> params = new ArrayList<>(trainable.parameters().values());
        double norm = AdamW.clipGradNorm(params, maxGradNorm);
        if (!Double.isFinite(norm)) throw new IllegalStateException("gradient norm is " + norm + " at step " + (optimizer.step() + 1));
        optimizer.update(trainable.parameters(), lr);
        int all = batch.stream().mapToInt(SequenceLogProbs.Sequence::length).sum();
        return new Step(optimizer.step(), loss, norm, lr, all, all / ((System.nanoTime() - start) / 1e9));
    }

    static int scoredTokens(List<SequenceLogProbs.Sequence> batch) {
        return batch.stream().mapToInt(SequenceLogProbs.Sequence::scoredTokens).sum();
    }

    @Override
    public void close() {
        model.setProjectionHook(null);
    }
}
