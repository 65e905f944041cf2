package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TinyCheckpointTest {
    static final TokenizerSpec DIGITS = TokenizerSpec.characters("0123456789+= \n");

    @TempDir
    Path tmp;

    @Test
    void writesACompleteHuggingFaceDirectory() {
        ModelConfig config = ModelConfig.llama(20, 16, 32, 1, 2, 1);
        Path dir = TinyCheckpoint.write(tmp.resolve("a"), config, 1, DIGITS);
        for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
            assertTrue(Files.isRegularFile(dir.resolve(f)), f);
        }
        ModelConfig read = ModelConfig.read(dir.resolve("config.json"));
        assertEquals(16, read.hiddenSize());
        assertArrayEquals(new long[] {16, 14}, read.eosTokenIds(), "eos = <|im_end|>, <|endoftext|>");
        assertEquals(Map.of("format", "pt"), Safetensors.metadata(dir.resolve("model.safetensors")));
    }

    @Test
    void characterTokenizerGivesOneIdPerCharacterAndSpecialTokensWhole() throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("a"), ModelConfig.llama(17, 16, 32, 1, 2, 1), 1, DIGITS);
        try (HuggingFaceTokenizer tok = HuggingFaceTokenizer.builder().optTokenizerPath(dir)
                .optAddSpecialTokens(false).optTruncation(false).build()) {
            Encoding e = tok.encode("<|im_start|>12+3= 15\n<|im_end|>");
            assertArrayEquals(new long[] {15, 1, 2, 10, 3, 11, 12, 1, 5, 13, 16}, e.getIds());
            assertEquals("12+3= 15\n", tok.decode(new long[] {1, 2, 10, 3, 11, 12, 1, 5, 13}));
            assertEquals(600, tok.encode("7".repeat(600)).getIds().length, "no truncation");
        }
    }

    @Test
    void sameSeedSameWeightsOtherSeedOtherWeights() {
        ModelConfig config = ModelConfig.llama(20, 16, 32, 1, 2, 1);
        float[] a = Safetensors.read(TinyCheckpoint.write(tmp.resolve("a"), config, 5, DIGITS).resolve("model.safetensors"))
                .get("model.embed_tokens.weight").toFloatArray();
        float[] b = Safetensors.read(TinyCheckpoint.write(tmp.resolve("b"), config, 5, DIGITS).resolve("model.safetensors"))
                .get("model.embed_tokens.weight").toFloatArray();
        float[] c = Safetensors.read(TinyCheckpoint.write(tmp.resolve("c"), config, 6, DIGITS).resolve("model.safetensors"))
                .get("model.embed_tokens.weight").toFloatArray();
        assertArrayEquals(a, b);
        assertNotEquals(a[0], c[0]);
        double sumSq = 0;
        for (float x : a) sumSq += x * x;
        assertEquals(0.02, Math.sqrt(sumSq / a.length), 0.003, "init standard deviation");
    }

    @Test
    void vocabularySmallerThanTheTokenizerIsRefused() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> TinyCheckpoint.write(tmp.resolve("a"), ModelConfig.llama(10, 16, 32, 1, 2, 1), 1, DIGITS));
        assertTrue(e.getMessage().contains("vocab_size 10"), e.getMessage());
    }
}
