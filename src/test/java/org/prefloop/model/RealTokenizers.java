package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** The real tokenizer files the npm packages bring into web/node_modules (generate-test-resources runs npm install). */
public final class RealTokenizers {
    private RealTokenizers() {
    }

    public static Path qwen3() {
        return dir("tokenizer-qwen3");
    }

    public static Path llama3() {
        return dir("tokenizer-llama3");
    }

    private static Path dir(String pkg) {
        Path d = Path.of("web", "node_modules", "@lenml", pkg, "models").toAbsolutePath();
        assertTrue(Files.isRegularFile(d.resolve("tokenizer.json")),
                d + " is missing: run the build without -DskipNpm once (or npm install in web/)");
        return d;
    }
}
