package org.prefloop.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
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
    private static void writeCharacterTokenizer(Path dir, List<String> symbols) {
        ObjectNode vocab = HfJson.newObject();
        for (int i = 0; i < symbols.size(); i++) vocab.put(symbols.get(i), i);
        ArrayNode added = HfJson.newArray();
        ObjectNode decoderSpecials = HfJson.newObject();
        for (int i = 0; i < TokenizerSpec.SPECIAL_TOKENS.size(); i++) {
            String content = TokenizerSpec.SPECIAL_TOKENS.get(i);
            int id = symbols.size() + i;
            vocab.put(content, id);
            ObjectNode t = added.addObject();
            t.put("id", id);
            t.put("content", content);
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
            ObjectNode d = t.deepCopy();
            d.remove("id");
            decoderSpecials.set(Integer.toString(id), d);
        }
        // the null members are left out of the file, as Gson wrote it (tokenizers reads them as absent)
        ObjectNode model = HfJson.newObject();
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        model.set("vocab", vocab);
        model.putArray("merges");
        ObjectNode tokenizer = HfJson.newObject();
        tokenizer.put("version", "1.0");
        tokenizer.putNull("truncation");
        tokenizer.putNull("padding");
        tokenizer.set("added_tokens", added);
        tokenizer.putNull("normalizer");
        tokenizer.putNull("pre_tokenizer");
        tokenizer.putNull("post_processor");
        tokenizer.putObject("decoder").put("type", "Fuse");
        tokenizer.set("model", model);

        ObjectNode config = HfJson.newObject();
        config.put("tokenizer_class", "PreTrainedTokenizerFast");
        config.set("added_tokens_decoder", decoderSpecials);
        config.putNull("bos_token");
        config.put("eos_token", "<|im_end|>");
        config.put("pad_token", "<|endoftext|>");
        config.put("add_bos_token", false);
        config.put("add_eos_token", false);
        config.put("clean_up_tokenization_spaces", false);
        config.put("model_max_length", 32768);
        config.put("chat_template", CHATML_TEMPLATE);

        HfJson.writePretty(dir.resolve("tokenizer.json"), tokenizer);
        HfJson.writePretty(dir.resolve("tokenizer_config.json"), config);
    }
}
