package org.prefloop.collect;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;

import java.util.Arrays;

/** An annotator's verdict, always in terms of the comparison's own response order (A, B). */
public enum Choice {
    A("A"), B("B"), TIE("tie"), BOTH_BAD("both_bad");

    private final String wire;

    Choice(String wire) {
        this.wire = wire;
    }

    @JsonValue
    public String wire() {
        return wire;
    }

    /** Whether this verdict makes a (chosen, rejected) training pair. */
    public boolean decisive() {
        return this == A || this == B;
    }

    @JsonCreator
    public static Choice parse(String value) {
        return Arrays.stream(values()).filter(c -> c.wire.equals(value)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("choice must be one of A, B, tie, both_bad; got '" + value + "'"));
    }
}
