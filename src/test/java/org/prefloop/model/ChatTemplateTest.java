package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.prefloop.model.ChatTemplate.ChatMessage;

/**
 * Real chat templates rendered by Jinjava must equal what Jinja2 renders. The expected strings
 * were produced by Jinja2 3.1.6 set up as transformers sets it up (ImmutableSandboxedEnvironment,
 * trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson), and they agree with reading the
 * Qwen3 template by hand: an assistant turn before the last user query loses its think block,
 * the last one keeps it, and the generation prompt opens an assistant turn.
 */
class ChatTemplateTest {
    static final List<ChatMessage> SINGLE = List.of(new ChatMessage("user", "What is 2+2?"));
    static final List<ChatMessage> SYSTEM = List.of(new ChatMessage("system", "You are terse."), new ChatMessage("user", "Hi"));
    static final List<ChatMessage> MULTI = List.of(
            new ChatMessage("system", "Be kind."),
            new ChatMessage("user", "Hi"),
            new ChatMessage("assistant", "<think>\nplan\n</think>\n\nHello!"),
            new ChatMessage("user", "  Bye  \n"));
    static final List<ChatMessage> LAST_ASSISTANT = List.of(
            new ChatMessage("user", "Q"), new ChatMessage("assistant", "<think>\nr1\n</think>\n\nA1"));

    @Test
    void qwen3TemplateRendersLikeJinja2() {
        ChatTemplate t = ChatTemplate.load(RealTokenizers.qwen3());
        assertEquals("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", t.render(SINGLE, true));
        assertEquals("<|im_start|>user\nWhat is 2+2?<|im_end|>\n", t.render(SINGLE, false));
        assertEquals("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                t.render(SYSTEM, true));
        assertEquals("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
                + "<|im_start|>user\n  Bye  \n<|im_end|>\n<|im_start|>assistant\n", t.render(MULTI, true));
        assertEquals("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nr1\n</think>\n\nA1<|im_end|>\n",
                t.render(LAST_ASSISTANT, false));
        assertEquals("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
                t.render(SINGLE, true, Map.of("enable_thinking", false)));
    }

    @Test
    void llama3TemplateRendersLikeJinja2WithBosToken() {
        ChatTemplate t = ChatTemplate.load(RealTokenizers.llama3());
        assertEquals("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", t.render(SINGLE, true));
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe kind.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
                + "<think>\nplan\n</think>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", t.render(MULTI, true));
    }

    @Test
    void renderedQwen3PromptTokenizesToTheVocabularyIds() {
        // ids read from tokenizer.json: <|im_start|> 151644, user 872, Ċ (newline) 198, What 3838, Ġis 374,
        // Ġ 220, 2 17, + 10, ? 30, <|im_end|> 151645, assistant 77091; digits split one by one (\p{N})
        ChatTemplate t = ChatTemplate.load(RealTokenizers.qwen3());
        try (TextTokenizer tok = TextTokenizer.load(RealTokenizers.qwen3())) {
            assertArrayEquals(new long[] {151644, 872, 198, 3838, 374, 220, 17, 10, 17, 30, 151645, 198, 151644, 77091, 198},
                    tok.encode(t.render(SINGLE, true)));
            assertArrayEquals(new long[] {151645}, tok.eosTokenIds());
            assertEquals("What is 2+2?", tok.decode(new long[] {3838, 374, 220, 17, 10, 17, 30}));
        }
    }

    @Test
    void renderedLlama3PromptTokenizesToTheVocabularyIds() {
        // <|begin_of_text|> 128000, <|start_header_id|> 128006, user 882, <|end_header_id|> 128007, ĊĊ 271,
        // What 3838 in Qwen but 3923 here, <|eot_id|> 128009, assistant 78191
        ChatTemplate t = ChatTemplate.load(RealTokenizers.llama3());
        try (TextTokenizer tok = TextTokenizer.load(RealTokenizers.llama3())) {
            assertArrayEquals(new long[] {128000, 128006, 882, 128007, 271, 3923, 374, 220, 17, 10, 17, 30, 128009,
                    128006, 78191, 128007, 271}, tok.encode(t.render(SINGLE, true)));
            assertEquals(128256, tok.vocabSize());
        }
    }

    @Test
    void longTextIsNotTruncated() {
        try (TextTokenizer tok = TextTokenizer.load(RealTokenizers.qwen3())) {
            String text = "word" + " word".repeat(1999); // "word", then 1999 times "Ġword"
            assertEquals(2000, tok.encode(text).length, "DJL's default would stop at 512");
        }
    }

    @Test
    void pythonStringMethodsKeepPythonSemantics() {
        // Java's split drops trailing empty pieces; Python's keeps them, and templates index [-1]
        ChatTemplate t = new ChatTemplate("{{ messages[0].content.split('</think>')[-1].lstrip('\\n') }}|"
                + "{{ messages[0].content.startswith('a') }}|{{ (messages[::-1])[0].role }}", Map.of());
        assertEquals("|true|b", t.render(List.of(new ChatMessage("a", "a</think>"), new ChatMessage("b", "x")), false));
    }

    @Test
    void raiseExceptionInATemplateBecomesAnError() {
        ChatTemplate t = new ChatTemplate("{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}ok",
                Map.of());
        var e = assertThrows(IllegalArgumentException.class, () -> t.render(List.of(new ChatMessage("assistant", "x")), false));
        assertTrue(e.getMessage().contains("first message must be from the user"), e.getMessage());
        assertEquals("ok", t.render(List.of(new ChatMessage("user", "x")), false));
    }

    @Test
    void tojsonFollowsPythonJsonDumps() {
        assertEquals("{\"name\": \"add\", \"args\": [1, 2], \"ok\": true, \"note\": \"é\\n\"}",
                ChatTemplate.toJson(new java.util.LinkedHashMap<>(Map.of()) {{
                    put("name", "add");
                    put("args", List.of(1, 2));
                    put("ok", true);
                    put("note", "é\n");
                }}));
    }
}
