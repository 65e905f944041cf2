package org.prefloop.model;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The benchmarks' SmolLM2-135M-shaped checkpoint (random weights, 538 MB of float32, a tokenizer of
 * 43 characters), written once under {@code target/} and reused by every benchmark that asks.
 */
public final class BenchCheckpoint {
    /** Where the benchmarks look for it unless told otherwise. */
    public static final Path SMOLLM2_DIR = Path.of("target/bench-smollm2-135m");

    /** SmolLM2-135M's shape: 30 layers, hidden 576, 9 query and 3 key/value heads, vocabulary 49,152, tied embeddings. */
    public static final ModelConfig SMOLLM2 = new ModelConfig("llama", 49152, 576, 1536, 30, 9, 3, 64, 1e-5, 100000.0, null, 2048,
            true, false, null, null, "float32", 0);

    private BenchCheckpoint() {
    }

    /** {@code dir}, after writing the SmolLM2-shaped checkpoint there if it holds none yet. */
    public static Path smolLm2(Path dir) {
        if (!Files.exists(dir.resolve("model.safetensors"))) {
            System.out.println("writing " + dir + " ...");
            TinyCheckpoint.write(dir, SMOLLM2, 135, TokenizerSpec.characters("abcdefghijklmnopqrstuvwxyz0123456789 .,\n"));
        }
        return dir;
    }
}
