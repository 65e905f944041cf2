package org.prefloop.collect;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The programmatic judge of the synthetic task (preference-data/synthetic): a prompt
 * {@code reverse: WORD} has exactly one right answer, WORD reversed.
 */
public final class ReverseChecker {
    public static final String NAME = "checker:reverse";
    private static final Pattern PROMPT = Pattern.compile("reverse:\\s*(\\S+)\\s*");

    private ReverseChecker() {
    }

    /** The right answer to the last user message, when it is a reversal task. */
    public static Optional<String> expected(String lastUserMessage) {
        Matcher m = PROMPT.matcher(lastUserMessage.strip());
        return m.matches() ? Optional.of(new StringBuilder(m.group(1)).reverse().toString()) : Optional.empty();
    }

    /** The verdict on two responses: "A", "B", "tie" (both right) or "both_bad". */
    public static String verdict(String expected, String a, String b) {
        boolean ra = expected.equals(a.strip()), rb = expected.equals(b.strip());
        if (ra && rb) return "tie";
        if (ra) return "A";
        if (rb) return "B";
        return "both_bad";
    }
}
