package org.prefloop.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * Writes a complete Hugging Face checkpoint directory (config.json, model.safetensors with a
 * seeded random initialisation, tokenizer.json, tokenizer_config.json with a chat template) so
 * tests, benchmarks and the bundled demo model never need a model hub.
 */
public final class TinyCheckpoint {
    /** ChatML, as Qwen2.5 ships it minus the tool-calling branches. */
    public static final String CHATML_TEMPLATE = "{% for message in messages %}"
            + "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
            + "{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private static final double INIT_STD = 0.02;

    private TinyCheckpoint() {
    }

    /**
     * Writes the checkpoint into {@code dir} and returns it. With a character tokenizer the
     * config's vocab_size must cover the tokenizer, and eos_token_id is set to
     * {@code <|im_end|>}, {@code <|endoftext|>} (bos none), as for Qwen chat models.
     * Weights: normal(0, 0.02) from {@code seed}, norms 1, biases 0.
     */
    public static Path write(Path dir, ModelConfig config, long seed, TokenizerSpec tok) {
        try {
            Files.createDirectories(dir);
            ModelConfig effective = config;
            if (tok.alphabet() != null) {
                List<String> symbols = tok.symbols();
                int needed = tok.characterVocabSize();
                if (config.vocabSize() < needed) {
                    throw new IllegalArgumentException("vocab_size " + config.vocabSize() + " is smaller than the "
                            + needed + " ids of the character tokenizer");
                }
                long endOfText = symbols.size();
                long imEnd = symbols.size() + 2L;
                effective = config.withSpecialTokens(null, new long[] {imEnd, endOfText});
                writeCharacterTokenizer(dir, symbols);
            } else {
                for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) {
                    Path src = tok.source().resolve(f);
                    if (Files.exists(src)) Files.copy(src, dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
                }
            }
            effective.write(dir.resolve("config.json"));
            writeWeights(dir.resolve("model.safetensors"), effective, seed);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write checkpoint to " + dir, e);
        }
    }

    private static void writeWeights(Path file, ModelConfig config, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        try (NDManager manager = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> weights = new TreeMap<>();
            for (Map.Entry<String, Shape> e : LlamaModel.expectedShapes(config).entrySet()) {
                String name = e.getKey();
                int n = Math.toIntExact(e.getValue().size());
                float[] values = new float[n];
                if (name.endsWith("norm.weight")) {
                    java.util.Arrays.fill(values, 1f);
                } else if (!name.endsWith(".bias")) {
                    for (int i = 0; i < n; i++) values[i] = (float) (gaussian(random) * INIT_STD);
                }
                weights.put(name, manager.create(values, e.getValue()));
            }
            Safetensors.write(file, weights, Map.of());
        }
    }

    /** Box-Muller on SplittableRandom: the same seed gives the same weights on every JDK. */
    private static double gaussian(SplittableRandom random) {
        double u1 = random.nextDouble();
        double u2 = random.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }

    /**
     * A byte-pair-encoding model with an empty merge list is exactly a character tokenizer, and the
     * Fuse decoder joins characters without spaces; special tokens are added tokens so that
     * ChatML markers in text become single ids.
     */
    private static void writeCharacterTokenizer(Path dir, List<String> symbols) throws IOException {
        JsonObject vocab = new JsonObject();
        for (int i = 0; i < symbols.size(); i++) vocab.addProperty(symbols.get(i), i);
        JsonArray added = new JsonArray();
        JsonObject decoderSpecials = new JsonObject();
        for (int i = 0; i < TokenizerSpec.SPECIAL_TOKENS.size(); i++) {
            String content = TokenizerSpec.SPECIAL_TOKENS.get(i);
            int id = symbols.size() + i;
            vocab.addProperty(content, id);
            JsonObject t = new JsonObject();
            t.addProperty("id", id);
            t.addProperty("content", content);
            t.addProperty("single_word", false);
            t.addProperty("lstrip", false);
            t.addProperty("rstrip", false);
            t.addProperty("normalized", false);
            t.addProperty("special", true);
            added.add(t);
            JsonObject d = t.deepCopy();
            d.remove("id");
            decoderSpecials.add(Integer.toString(id), d);
        }
        JsonObject model = new JsonObject();
        model.addProperty("type", "BPE");
        model.add("dropout", JsonNull.INSTANCE);
        model.add("unk_token", JsonNull.INSTANCE);
        model.add("continuing_subword_prefix", JsonNull.INSTANCE);
        model.add("end_of_word_suffix", JsonNull.INSTANCE);
        model.addProperty("fuse_unk", false);
        model.addProperty("byte_fallback", false);
        model.addProperty("ignore_merges", false);
        model.add("vocab", vocab);
        model.add("merges", new JsonArray());
        JsonObject tokenizer = new JsonObject();
        tokenizer.addProperty("version", "1.0");
        tokenizer.add("truncation", JsonNull.INSTANCE);
        tokenizer.add("padding", JsonNull.INSTANCE);
        tokenizer.add("added_tokens", added);
        tokenizer.add("normalizer", JsonNull.INSTANCE);
        tokenizer.add("pre_tokenizer", JsonNull.INSTANCE);
        tokenizer.add("post_processor", JsonNull.INSTANCE);
        JsonObject decoder = new JsonObject();
        decoder.addProperty("type", "Fuse");
        tokenizer.add("decoder", decoder);
        tokenizer.add("model", model);

        JsonObject config = new JsonObject();
        config.addProperty("tokenizer_class", "PreTrainedTokenizerFast");
        config.add("added_tokens_decoder", decoderSpecials);
        config.add("bos_token", JsonNull.INSTANCE);
        config.addProperty("eos_token", "<|im_end|>");
        config.addProperty("pad_token", "<|endoftext|>");
        config.addProperty("add_bos_token", false);
        config.addProperty("add_eos_token", false);
        config.addProperty("clean_up_tokenization_spaces", false);
        config.addProperty("model_max_length", 32768);
        config.addProperty("chat_template", CHATML_TEMPLATE);

        var gson = new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create();
        Files.writeString(dir.resolve("tokenizer.json"), gson.toJson(tokenizer) + "\n", StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("tokenizer_config.json"), gson.toJson(config) + "\n", StandardCharsets.UTF_8);
    }
}
