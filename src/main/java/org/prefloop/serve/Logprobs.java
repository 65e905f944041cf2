package org.prefloop.serve;

import com.fasterxml.jackson.annotation.JsonInclude;
import org.prefloop.model.TextTokenizer;
import org.prefloop.model.TokenLogprobs;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The model's token log-probabilities in OpenAI's two shapes: chat's
 * ({@code content[] {token, logprob, bytes, top_logprobs[]}}) and the legacy completions' one
 * ({@code tokens, token_logprobs, top_logprobs, text_offset}).
 */
final class Logprobs {
    private Logprobs() {
    }

    record Alternative(String token, float logprob, List<Integer> bytes) {
    }

    record Content(String token, float logprob, List<Integer> bytes, List<Alternative> top_logprobs) {
    }

    /** Chat's {@code choices[].logprobs}. */
    record Chat(List<Content> content) {
    }

    /**
     * The legacy shape. A position without a prefix (the first token of an echoed prompt) has null
     * for its logprob and its alternatives, as OpenAI answers.
     */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Legacy(List<String> tokens, List<Float> token_logprobs, List<Map<String, Float>> top_logprobs, List<Integer> text_offset) {
        static Legacy empty() {
            return new Legacy(new ArrayList<>(), new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        }

        boolean isEmpty() {
            return tokens.isEmpty();
        }
    }

    static Chat chat(TextTokenizer tokenizer, List<TokenLogprobs> tokens) {
        List<Content> content = new ArrayList<>();
        for (TokenLogprobs t : tokens) {
            List<Alternative> top = new ArrayList<>();
            for (int i = 0; i < t.topIds().length; i++) {
                String text = text(tokenizer, t.topIds()[i]);
                top.add(new Alternative(text, t.topLogprobs()[i], bytes(text)));
            }
            String text = text(tokenizer, t.token());
            content.add(new Content(text, t.logprob(), bytes(text), top));
        }
        return new Chat(content);
    }

    /**
     * Appends tokens to a legacy block. {@code offset} is where the first token's text starts in
     * the choice's text; each next one starts where the one before ends, never past {@code end}.
     * {@code logprobs} is null for a position that has none (the first token of a text).
     */
    static void append(Legacy block, TextTokenizer tokenizer, long id, TokenLogprobs logprobs, int offset) {
        String text = text(tokenizer, id);
        block.tokens().add(text);
        block.text_offset().add(offset);
        if (logprobs == null) {
            block.token_logprobs().add(null);
            block.top_logprobs().add(null);
            return;
        }
        block.token_logprobs().add(logprobs.logprob());
        // OpenAI lists the sampled token among the alternatives too, so there may be one more than asked for
        Map<String, Float> top = new LinkedHashMap<>();
        for (int i = 0; i < logprobs.topIds().length; i++) top.putIfAbsent(text(tokenizer, logprobs.topIds()[i]), logprobs.topLogprobs()[i]);
        top.putIfAbsent(text, logprobs.logprob());
        block.top_logprobs().add(top);
    }

    /** The text of one token as the tokenizer decodes it alone (special tokens spelled out). */
    static String text(TextTokenizer tokenizer, long id) {
        return tokenizer.decode(new long[]{id});
    }

    /** UTF-8 bytes of the token's text, as unsigned values. */
    private static List<Integer> bytes(String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        List<Integer> out = new ArrayList<>(b.length);
        for (byte x : b) out.add(x & 0xff);
        return out;
    }
}
