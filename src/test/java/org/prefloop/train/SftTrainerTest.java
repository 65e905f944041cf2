package org.prefloop.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.TextTokenizer;
import org.prefloop.model.TinyCheckpoint;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SFT of a LoRA adapter on chat demonstrations: loss on assistant tokens only, and it learns them. */
class SftTrainerTest {

    @Test
    void theLossCoversTheAssistantTurnOnlyAndFalls(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), DpoTrainerTest.CONFIG, 3, DpoTrainerTest.CHARS);
        try (LlamaModel model = LlamaModel.load(ckpt); TextTokenizer tokenizer = TextTokenizer.load(ckpt)) {
            ChatTemplate template = ChatTemplate.load(ckpt);
            Random rnd = new Random(4);
            List<SequenceLogProbs.Sequence> demos = new ArrayList<>();
            List<String> answers = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                int a = rnd.nextInt(10), b = rnd.nextInt(10);
                answers.add(String.valueOf(a + b));
                demos.add(SftTrainer.split(List.of(new ChatTemplate.ChatMessage("user", a + "+" + b + "="),
                        new ChatTemplate.ChatMessage("assistant", String.valueOf(a + b))), template, tokenizer));
            }
            SequenceLogProbs.Sequence first = demos.get(0);
            int firstScored = 0;
            while (!first.scored()[firstScored]) firstScored++;
            String completion = tokenizer.decode(java.util.Arrays.copyOfRange(first.ids(), firstScored, first.length()));
            assertTrue(completion.startsWith(answers.get(0)), "the completion is the assistant's answer: " + completion);
            assertTrue(completion.contains("<|im_end|>"), "the end-of-turn token is learned too: " + completion);
            String prompt = tokenizer.decode(java.util.Arrays.copyOf(first.ids(), firstScored));
            assertTrue(prompt.strip().endsWith("<|im_start|>assistant"), "the prompt ends with the generation prompt");

            LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(8, 16,
                    List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), null), 2, false);
            try (SftTrainer sft = new SftTrainer(model, Trainable.lora(adapter), AdamW.defaults(), 1.0)) {
                double before = sft.evaluate(demos, 8);
                for (int i = 0; i < 60; i++) sft.step(demos, 1, 1e-2);
                double after = sft.evaluate(demos, 8);
                assertTrue(after < before * 0.9, "NLL per assistant token fell from " + before + " to " + after);
            }
            assertThrows(IllegalArgumentException.class, () -> SftTrainer.split(
                    List.of(new ChatTemplate.ChatMessage("user", "no answer")), template, tokenizer));
        }
    }
}
