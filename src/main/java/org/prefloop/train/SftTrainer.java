package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.TextTokenizer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Supervised fine-tuning of a LoRA adapter: the loss is the mean negative log-likelihood of the
 * completion tokens only (for a conversation: the final assistant turn, rendered by the model's
 * own chat template; the prompt's tokens carry no loss).
 */
public final class SftTrainer implements AutoCloseable {
    private final LlamaModel model;
    private final LoraAdapter adapter;
    private final double learningRate;
    private final double maxGradNorm;
    private final AdamW optimizer = AdamW.defaults();
    private final Map<String, NDArray> trainable = new LinkedHashMap<>();

    /** What one step logged. */
    public record Step(long step, double loss, double gradNorm, double tokensPerSecond) {
    }

    public SftTrainer(LlamaModel model, LoraAdapter adapter, double learningRate, double maxGradNorm) {
        this.model = model;
        this.adapter = adapter;
        this.learningRate = learningRate;
        this.maxGradNorm = maxGradNorm;
        adapter.weights().forEach((module, ab) -> {
            ab[0].setRequiresGradient(true);
            ab[1].setRequiresGradient(true);
            trainable.put(module + ".lora_A", ab[0]);
            trainable.put(module + ".lora_B", ab[1]);
        });
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
        return new SequenceLogProbs.Sequence(tokenizer.encode(prompt), tokenizer.encode(full.substring(prompt.length())));
    }

    /** Mean negative log-likelihood per completion token of a batch, without training (for evaluation). */
    public double evaluate(List<SequenceLogProbs.Sequence> batch) {
        JniUtils.setGradMode(false);
        model.setProjectionHook(adapter.hook());
        try (NDManager scope = model.manager().newSubManager()) {
            return -SequenceLogProbs.of(model, batch, scope).sum().getFloat() / completionTokens(batch);
        }
    }

    public Step step(List<SequenceLogProbs.Sequence> batch) {
        long start = System.nanoTime();
        model.setProjectionHook(adapter.hook());
        int tokens = completionTokens(batch);
        try (NDManager scope = model.manager().newSubManager()) {
            double loss;
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                NDArray nll = SequenceLogProbs.of(model, batch, scope).sum().neg().div(scope.create((float) tokens));
                collector.backward(nll);
                loss = nll.getFloat();
            }
            if (!Double.isFinite(loss)) throw new IllegalStateException("SFT loss is " + loss + " at step " + (optimizer.step() + 1));
            double norm = AdamW.clipGradNorm(new ArrayList<>(trainable.values()), maxGradNorm);
            optimizer.update(trainable, learningRate);
            int all = batch.stream().mapToInt(SequenceLogProbs.Sequence::length).sum();
            return new Step(optimizer.step(), loss, norm, all / ((System.nanoTime() - start) / 1e9));
        }
    }

    private static int completionTokens(List<SequenceLogProbs.Sequence> batch) {
        return batch.stream().mapToInt(s -> s.completion().length).sum();
    }

    @Override
    public void close() {
        optimizer.close();
        model.setProjectionHook(null);
    }
}
