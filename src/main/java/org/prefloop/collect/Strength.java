package org.prefloop.collect;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;

import java.util.Arrays;

/**
 * How much better the chosen response of an A or B verdict is. The scores are Llama 2's margin
 * scale (significantly better 1, better 2/3, slightly better 1/3; tie and both bad are 0): they
 * become TRL's {@code margin} and, when asked for, the pair weights of a frozen dataset.
 */
public enum Strength {
    MUCH_BETTER("much_better", 1.0), BETTER("better", 2 / 3.0), SLIGHTLY_BETTER("slightly_better", 1 / 3.0);

    private final String wire;
    private final double score;

    Strength(String wire, double score) {
        this.wire = wire;
        this.score = score;
    }

    @JsonValue
    public String wire() {
        return wire;
    }

    public double score() {
        return score;
    }

    /** The score of a stored strength; an A or B verdict given without one counts as plainly "better". */
    public static double scoreOf(String wire) {
        return wire == null ? BETTER.score : parse(wire).score;
    }

    @JsonCreator
    public static Strength parse(String value) {
        return Arrays.stream(values()).filter(s -> s.wire.equals(value)).findFirst().orElseThrow(() -> new IllegalArgumentException(
                "strength must be one of much_better, better, slightly_better; got '" + value + "'"));
    }
}
