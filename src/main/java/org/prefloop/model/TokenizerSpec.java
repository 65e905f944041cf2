package org.prefloop.model;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;

/**
 * Which tokenizer a {@link TinyCheckpoint} gets: a character-level one over a given alphabet
 * (tiny vocabularies for synthetic tasks), or the files of an existing tokenizer copied as they are.
 *
 * @param alphabet the characters of a character-level tokenizer, or null
 * @param source a directory with tokenizer.json and tokenizer_config.json to copy, or null
 */
public record TokenizerSpec(String alphabet, Path source) {
    /** The special tokens every character-level tokenizer ends with, in this order. */
    public static final List<String> SPECIAL_TOKENS = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>");

    public TokenizerSpec {
        if ((alphabet == null) == (source == null)) {
            throw new IllegalArgumentException("a tokenizer spec is either an alphabet or a source directory");
        }
        if (alphabet != null) {
            if (alphabet.isEmpty()) throw new IllegalArgumentException("the alphabet of a character tokenizer is empty");
            if (alphabet.codePoints().distinct().count() != alphabet.codePointCount(0, alphabet.length())) {
                throw new IllegalArgumentException("the alphabet repeats a character: " + alphabet);
            }
        }
        if (source != null && !Files.isRegularFile(source.resolve("tokenizer.json"))) {
            throw new IllegalArgumentException(source + " has no tokenizer.json");
        }
    }

    /** One token per character of {@code alphabet} (ids in order), then {@link #SPECIAL_TOKENS}. */
    public static TokenizerSpec characters(String alphabet) {
        return new TokenizerSpec(Objects.requireNonNull(alphabet, "alphabet"), null);
    }

    /** The tokenizer files of {@code dir}, copied verbatim. */
    public static TokenizerSpec copyOf(Path dir) {
        return new TokenizerSpec(null, Objects.requireNonNull(dir, "dir"));
    }

    /** Characters of the alphabet in id order. */
    List<String> symbols() {
        LinkedHashSet<String> out = new LinkedHashSet<>();
        alphabet.codePoints().forEach(cp -> out.add(new String(Character.toChars(cp))));
        return List.copyOf(out);
    }

    /** Number of ids a character tokenizer uses. */
    public int characterVocabSize() {
        return symbols().size() + SPECIAL_TOKENS.size();
    }
}
