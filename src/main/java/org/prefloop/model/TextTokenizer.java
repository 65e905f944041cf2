package org.prefloop.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * The tokenizer of a checkpoint (tokenizer.json through DJL's Hugging Face tokenizers binding).
 * Built with explicit options: DJL's default instance silently truncates at 512 tokens.
 */
public final class TextTokenizer implements AutoCloseable {
    private final HuggingFaceTokenizer tokenizer;
    private final Map<String, Long> vocabulary;
    private final Set<Long> specialIds;
    private final long[] eosTokenIds;
    private final int vocabSize;
    private final Long bosTokenId;
    private final boolean addBos;

    private TextTokenizer(HuggingFaceTokenizer tokenizer, Map<String, Long> vocabulary, Set<Long> specialIds,
                          long[] eosTokenIds, Long bosTokenId, boolean addBos) {
        this.tokenizer = tokenizer;
        this.vocabulary = vocabulary;
        this.specialIds = specialIds;
        this.eosTokenIds = eosTokenIds;
        this.vocabSize = (int) (vocabulary.values().stream().mapToLong(Long::longValue).max().orElse(-1) + 1);
        this.bosTokenId = bosTokenId;
        this.addBos = addBos;
    }

    /**
     * Loads tokenizer.json of {@code hfDir}; end-of-sequence ids are the union of config.json's
     * eos_token_id and tokenizer_config.json's eos_token, since checkpoints disagree on which one
     * their chat turns end with.
     */
    public static TextTokenizer load(Path hfDir) {
        Path json = hfDir.resolve("tokenizer.json");
        if (!Files.isRegularFile(json)) throw new IllegalArgumentException(hfDir + " has no tokenizer.json");
        Map<String, Long> vocab = new HashMap<>();
        Set<Long> special = new LinkedHashSet<>();
        ObjectNode root = HfJson.readObject(json);
        JsonNode model = root.get("model");
        if (model == null || !model.isObject()) throw new IllegalArgumentException(json + " has no model");
        JsonNode v = model.get("vocab");
        if (v != null && v.isObject()) {
            v.properties().forEach(e -> vocab.put(e.getKey(), HfJson.longValue(e.getValue(), "vocab." + e.getKey())));
        } else if (v != null && v.isArray()) { // Unigram: [[piece, score], ...]
            for (int i = 0; i < v.size(); i++) {
                vocab.put(HfJson.text(v.get(i).get(0), "vocab[" + i + "]"), (long) i);
            }
        }
        for (JsonNode t : root.path("added_tokens")) {
            long id = HfJson.longValue(t.get("id"), "added_tokens: id");
            vocab.put(HfJson.text(t.get("content"), "added_tokens: content"), id);
            if (t.has("special") && HfJson.boolValue(t.get("special"), "added_tokens: special")) special.add(id);
        }
        ObjectNode tokConfig = readJson(hfDir.resolve("tokenizer_config.json"));
        Set<Long> eos = new LinkedHashSet<>();
        Long bos = null;
        if (Files.exists(hfDir.resolve("config.json"))) {
            ModelConfig config = ModelConfig.read(hfDir.resolve("config.json"));
            for (long id : config.eosTokenIds()) eos.add(id);
            bos = config.bosTokenId();
        }
        String eosToken = tokenString(tokConfig, "eos_token");
        if (eosToken != null && vocab.containsKey(eosToken)) eos.add(vocab.get(eosToken));
        String bosToken = tokenString(tokConfig, "bos_token");
        if (bosToken != null && vocab.containsKey(bosToken)) bos = vocab.get(bosToken);
        boolean addBos = tokConfig.has("add_bos_token") && HfJson.boolValue(tokConfig.get("add_bos_token"), "add_bos_token") && bos != null;
        try {
            HuggingFaceTokenizer tok = HuggingFaceTokenizer.builder()
                    .optTokenizerPath(json)
                    .optAddSpecialTokens(false)
                    .optTruncation(false)
                    .optPadding(false)
                    .build();
            return new TextTokenizer(tok, Map.copyOf(vocab), Set.copyOf(special),
                    eos.stream().mapToLong(Long::longValue).toArray(), bos, addBos);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot load tokenizer " + json, e);
        }
    }

    private static ObjectNode readJson(Path file) {
        return Files.exists(file) ? HfJson.readObject(file) : HfJson.newObject();
    }

    /** A token in tokenizer_config.json is either a string or {"content": ...}. */
    static String tokenString(ObjectNode config, String key) {
        JsonNode e = config.get(key);
        if (e == null || e.isNull()) return null;
        if (e.isObject()) return HfJson.text(e.get("content"), key + ".content");
        return HfJson.text(e, key);
    }

    /**
     * Ids of {@code text}, special-token markers in it recognised as single ids, nothing added or
     * cut; a bos id is prepended only when tokenizer_config.json sets add_bos_token.
     */
    public long[] encode(String text) {
        long[] ids = tokenizer.encode(text, false, false).getIds();
        if (addBos && (ids.length == 0 || ids[0] != bosTokenId)) {
            long[] withBos = new long[ids.length + 1];
            withBos[0] = bosTokenId;
            System.arraycopy(ids, 0, withBos, 1, ids.length);
            return withBos;
        }
        return ids;
    }

    /** Ids of text that continues a sequence: like {@link #encode} but never with a bos id. */
    public long[] encodeContinuation(String text) {
        return tokenizer.encode(text, false, false).getIds();
    }

    /** Text of {@code ids}, special tokens included. */
    public String decode(long[] ids) {
        return tokenizer.decode(ids, false);
    }

    /** Text of {@code ids} without special tokens, as an API response shows it. */
    public String decodeSkippingSpecial(long[] ids) {
        return tokenizer.decode(ids, true);
    }

    public long[] eosTokenIds() {
        return eosTokenIds.clone();
    }

    /** One more than the largest id the tokenizer can produce. */
    public int vocabSize() {
        return vocabSize;
    }

    /** The id of a vocabulary entry or added token, exactly as spelled in tokenizer.json. */
    public long tokenId(String token) {
        Long id = vocabulary.get(token);
        if (id == null) throw new IllegalArgumentException("token '" + token + "' is not in the vocabulary");
        return id;
    }

    public boolean isSpecial(long id) {
        return specialIds.contains(id);
    }

    @Override
    public void close() {
        tokenizer.close();
    }

    @Override
    public String toString() {
        return "TextTokenizer[vocab=" + vocabSize + ", eos=" + Arrays.toString(eosTokenIds) + "]";
    }
}
