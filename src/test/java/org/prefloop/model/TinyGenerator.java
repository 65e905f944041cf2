package org.prefloop.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The tiny qwen2-shaped checkpoint the generation tests share (random weights, and random norms
 * and biases so that a missing one shows), with its tokenizer and a generator without a prefix
 * cache. A test class registers it as a static {@code @RegisterExtension} field: it is written to a
 * temporary folder before the class's tests and closed and deleted after them.
 */
final class TinyGenerator implements BeforeAllCallback, AfterAllCallback {
    LlamaModel model;
    TextTokenizer tokenizer;
    Generator generator;
    private Path dir;

    @Override
    public void beforeAll(ExtensionContext context) throws IOException {
        dir = Files.createTempDirectory("prefloop-tiny-generator");
        TinyCheckpoint.write(dir, LlamaModelTest.BASE.withModelType("qwen2"), 21, LlamaModelTest.CHARS);
        LlamaModelTest.randomizeNormsAndBiases(dir, 5);
        model = LlamaModel.load(dir, ai.djl.Device.cpu());
        tokenizer = TextTokenizer.load(dir);
        generator = new Generator(model, tokenizer);
    }

    @Override
    public void afterAll(ExtensionContext context) throws IOException {
        tokenizer.close();
        model.close();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }
}
