package org.prefloop.model;

import ai.djl.Device;
import java.nio.file.Path;

/**
 * The tiny qwen2-shaped checkpoint the generation tests share (random weights, and random norms
 * and biases so that a missing one shows), written under {@code dir}, with its tokenizer and a
 * generator without a prefix cache.
 */
final class TinyGenerator implements AutoCloseable {
    final LlamaModel model;
    final TextTokenizer tokenizer;
    final Generator generator;

    TinyGenerator(Path dir) {
        TinyCheckpoint.write(dir, LlamaModelTest.BASE.withModelType("qwen2"), 21, LlamaModelTest.CHARS);
        LlamaModelTest.randomizeNormsAndBiases(dir, 5);
        model = LlamaModel.load(dir, Device.cpu());
        tokenizer = TextTokenizer.load(dir);
        generator = new Generator(model, tokenizer);
    }

    @Override
    public void close() {
        tokenizer.close();
        model.close();
    }
}
