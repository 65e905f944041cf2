package org.prefloop.model;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The shape, character alphabet and seed of a tiny randomly initialised model, as JSON (for
 * example {@code preference-data/synthetic/tiny-model.json}): what {@code prefloop init-model}
 * writes before a model is trained from scratch.
 */
public record TinyModelRecipe(String alphabet,
                              @JsonProperty("hidden_size") int hiddenSize,
                              @JsonProperty("intermediate_size") int intermediateSize,
                              @JsonProperty("num_hidden_layers") int layers,
                              @JsonProperty("num_attention_heads") int heads,
                              @JsonProperty("num_key_value_heads") int kvHeads,
                              long seed) {

    public static TinyModelRecipe read(Path file) {
        try {
            return new ObjectMapper().readValue(file.toFile(), TinyModelRecipe.class);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the model recipe " + file + ": " + e.getMessage());
        }
    }

    /** Writes the random model and its character tokenizer (ChatML template) into {@code dir}. */
    public Path write(Path dir) {
        TokenizerSpec chars = TokenizerSpec.characters(alphabet);
        ModelConfig config = ModelConfig.llama(chars.characterVocabSize(), hiddenSize, intermediateSize, layers, heads, kvHeads);
        return TinyCheckpoint.write(dir, config, seed, chars);
    }
}
