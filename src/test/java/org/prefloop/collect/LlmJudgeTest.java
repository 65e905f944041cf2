package org.prefloop.collect;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The both-orders rule: a judge's verdict counts only when it names the same response whichever is shown first. */
class LlmJudgeTest {
    static final List<ChatMessage> PROMPT = List.of(new ChatMessage("user", "Say hello."));

    @Test
    void aConsistentJudgeDecidesAndAPositionBiasedOneGivesTies() {
        // prefers the longer response wherever it is shown
        LlmJudge fair = new LlmJudge((rubric, q) -> {
            String first = q.substring(q.indexOf("Response 1:\n") + 12, q.indexOf("\n\nResponse 2:"));
            String second = q.substring(q.indexOf("Response 2:\n") + 12, q.indexOf("\n\nWhich response"));
            return first.length() > second.length() ? "1" : "2";
        }, null);
        assertEquals(Choice.A, fair.judge(PROMPT, "Hello there, friend!", "Hi").choice());
        assertEquals(Choice.B, fair.judge(PROMPT, "Hi", "Hello there, friend!").choice());

        // always names the response shown first: inconsistent, so a tie
        LlmJudge biased = new LlmJudge((rubric, q) -> "1", null);
        LlmJudge.Verdict v = biased.judge(PROMPT, "Hello there, friend!", "Hi");
        assertEquals(Choice.TIE, v.choice());
        assertEquals("1", v.answerInOrder());
        assertEquals("1", v.answerSwapped());
    }

    @Test
    void eachComparisonIsAskedTwiceWithTheResponsesSwappedAndTheRubricAsSystemPrompt() {
        List<String[]> asked = new ArrayList<>();
        LlmJudge judge = new LlmJudge((rubric, q) -> {
            asked.add(new String[]{rubric, q});
            return "tie";
        }, "Prefer the polite answer. Answer 1, 2 or tie.");
        assertEquals(Choice.TIE, judge.judge(PROMPT, "AAA", "BBB").choice());
        assertEquals(2, asked.size());
        assertEquals("Prefer the polite answer. Answer 1, 2 or tie.", asked.get(0)[0]);
        assertTrue(asked.get(0)[1].indexOf("AAA") < asked.get(0)[1].indexOf("BBB"));
        assertTrue(asked.get(1)[1].indexOf("BBB") < asked.get(1)[1].indexOf("AAA"));
        assertTrue(asked.get(0)[1].contains("user: Say hello."));
    }

    @Test
    void answersAreReadForTheFirstVerdictTheyName() {
        assertEquals(LlmJudge.Said.FIRST, LlmJudge.read("1"));
        assertEquals(LlmJudge.Said.SECOND, LlmJudge.read("Response 2 is better."));
        assertEquals(LlmJudge.Said.TIE, LlmJudge.read("Tie."));
        assertEquals(LlmJudge.Said.NOTHING, LlmJudge.read("olleh"));
        assertEquals(LlmJudge.Said.NOTHING, LlmJudge.read("12"));
        assertEquals(Choice.TIE, LlmJudge.combine(LlmJudge.Said.NOTHING, LlmJudge.Said.SECOND));
        assertEquals(Choice.TIE, LlmJudge.combine(LlmJudge.Said.SECOND, LlmJudge.Said.SECOND));
    }
}
