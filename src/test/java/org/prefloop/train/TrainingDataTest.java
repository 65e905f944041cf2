package org.prefloop.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.RealTokenizers;
import org.prefloop.model.TextTokenizer;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which tokens carry loss, for each of TRL's formats, with the tiny character tokenizer and with Llama 3's real one. */
class TrainingDataTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final TokenizerSpec CHARS = TokenizerSpec.characters("abcdefghijklmnopqrstuvwxyz0123456789 ?\n");

    /** The text of the scored tokens, in order, joined. */
    static String scoredText(TextTokenizer tok, SequenceLogProbs.Sequence s) {
        List<Long> ids = new ArrayList<>();
        for (int i = 0; i < s.length(); i++) if (s.scored()[i]) ids.add(s.ids()[i]);
        return tok.decode(ids.stream().mapToLong(Long::longValue).toArray());
    }

    @Test
    void everyAssistantTurnIsScoredAndNothingElse(@TempDir Path tmp) throws Exception {
        Path dir = TinyCheckpoint.write(tmp.resolve("m"), ModelConfig.llama(CHARS.characterVocabSize(), 16, 32, 1, 2, 1), 1, CHARS);
        try (TextTokenizer tok = TextTokenizer.load(dir)) {
            TrainingData data = new TrainingData(tok, ChatTemplate.load(dir));
            var conv = data.sft(JSON.readTree("""
                    {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one"},
                      {"role": "assistant", "content": "first"}, {"role": "user", "content": "two"},
                      {"role": "assistant", "content": "second"}]}"""));
            assertEquals("first<|im_end|>\nsecond<|im_end|>\n", scoredText(tok, conv));
            var whole = tok.decode(conv.ids());
            assertTrue(whole.startsWith("<|im_start|>system\nbe brief"), whole);

            var text = data.sft(JSON.readTree("{\"text\": \"plain words\"}"));
            assertFalse(text.scored()[0]);
            assertEquals("lain words<|im_end|>", scoredText(tok, text), "all but the first token, and the eos appended");

            var pc = data.sft(JSON.readTree("{\"prompt\": \"q?\", \"completion\": \"yes\"}"));
            assertEquals("yes<|im_end|>", scoredText(tok, pc));

            var pair = data.pair(JSON.readTree("""
                    {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "good"}],
                     "rejected": [{"role": "assistant", "content": "bad"}], "weight": 0.5}"""));
            assertEquals("good<|im_end|>\n", tok.decode(pair.chosen()));
            assertEquals("bad<|im_end|>\n", tok.decode(pair.rejected()));
            assertTrue(tok.decode(pair.prompt()).endsWith("<|im_start|>assistant\n"));
            assertEquals(0.5, pair.weight());

            var loaded = data.sft(List.of(JSON.readTree("{\"messages\": [{\"role\": \"user\", \"content\": \"no answer\"}]}"),
                    JSON.readTree("{\"nothing\": 1}"), JSON.readTree("{\"text\": \"ok\"}")), 100);
            assertEquals(1, loaded.examples().size());
            assertEquals(2, loaded.unrenderable());
            assertTrue(loaded.problems().get(0).contains("no assistant turn"), loaded.problems().toString());

            var packed = TrainingData.pack(List.of(conv, text, pc, text), 100);
            int tokens = conv.length() + 2 * text.length() + pc.length();
            assertEquals(tokens, packed.stream().mapToInt(SequenceLogProbs.Sequence::length).sum(), "packing keeps every token");
            assertTrue(packed.size() < 4 && packed.stream().allMatch(p -> p.length() <= 100), "packed into fewer rows of at most 100");
        }
    }

    @Test
    void llama3MultiTurnMasksFollowTheRealTemplate() throws Exception {
        Path dir = RealTokenizers.llama3();
        try (TextTokenizer tok = TextTokenizer.load(dir)) {
            TrainingData data = new TrainingData(tok, ChatTemplate.load(dir));
            var conv = data.sft(JSON.readTree("""
                    {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."},
                      {"role": "user", "content": "Another?"}, {"role": "assistant", "content": "Green."}]}"""));
            String scored = scoredText(tok, conv);
            assertTrue(scored.contains("Blue.<|eot_id|>") && scored.contains("Green.<|eot_id|>"), scored);
            assertFalse(scored.contains("Name a colour") || scored.contains("Another?") || scored.contains("user"), scored);
            assertEquals(1, Arrays.stream(conv.ids()).filter(id -> id == tok.tokenId("<|begin_of_text|>")).count(), "one bos, not one per turn");
        }
    }

    /** TRL 1.13: the first max_length tokens of prompt+completion; a prompt that fills max_length drops the pair. */
    @Test
    void dpoTruncationKeepsTheStartAsTrlDoes() {
        long[] prompt = {1, 2, 3, 4, 5, 6}, chosen = {7, 8, 9, 10}, rejected = {11, 12};
        DpoTrainer.Pair p = new DpoTrainer.Pair(prompt, chosen, rejected, 1);
        DpoTrainer.Pair t = TrainingData.truncate(p, 8, null);
        assertEquals(Arrays.toString(prompt), Arrays.toString(t.prompt()), "the prompt is kept whole");
        assertEquals("[7, 8]", Arrays.toString(t.chosen()));
        assertEquals("[11, 12]", Arrays.toString(t.rejected()));
        assertTrue(TrainingData.truncate(p, 10, null) == p, "a pair within max_length is left alone");
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> TrainingData.truncate(p, 6, null));

        DpoTrainer.Pair left = TrainingData.truncate(p, 8, 3);
        assertEquals("[4, 5, 6]", Arrays.toString(left.prompt()), "max_prompt_length cuts the prompt from the left");
        assertEquals("[7, 8, 9, 10]", Arrays.toString(left.chosen()));
    }
}
