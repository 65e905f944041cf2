package org.prefloop.eval;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A candidate replaces its parent only when it beat the parent head to head beyond chance. */
class PromotionGateTest {

    /** {@code wins} of {@code total} judgments won by the candidate, half of them with the candidate shown as B. */
    static List<BradleyTerry.Match> record(int wins, int ties, int total) {
        List<BradleyTerry.Match> out = new ArrayList<>();
        for (int i = 0; i < total; i++) {
            boolean candidateFirst = i % 2 == 0;
            BradleyTerry.Outcome o = i < wins ? (candidateFirst ? BradleyTerry.Outcome.FIRST_WINS : BradleyTerry.Outcome.SECOND_WINS)
                    : i < wins + ties ? BradleyTerry.Outcome.TIE
                    : (candidateFirst ? BradleyTerry.Outcome.SECOND_WINS : BradleyTerry.Outcome.FIRST_WINS);
            out.add(candidateFirst ? new BradleyTerry.Match("v2", "v1", o) : new BradleyTerry.Match("v1", "v2", o));
        }
        out.add(new BradleyTerry.Match("v3", "v1", BradleyTerry.Outcome.FIRST_WINS));   // other versions' matches do not count
        return out;
    }

    @Test
    void aClearWinPassesAndALossOrACloseCallDoesNot() {
        PromotionGate.Decision clear = PromotionGate.decide(record(45, 0, 60), "v2", "v1");
        assertTrue(clear.allowed(), clear.reason());
        assertEquals(0.75, clear.winRate().estimate(), 1e-9);
        assertEquals(60, clear.winRate().matches());
        assertTrue(clear.winRate().low() > 0.5 && clear.winRate().high() < 1.0, clear.reason());

        PromotionGate.Decision lost = PromotionGate.decide(record(20, 0, 60), "v2", "v1");
        assertFalse(lost.allowed());
        assertTrue(lost.reason().contains("does not beat its parent") && lost.reason().contains("0.333"), lost.reason());

        // 11 wins, 2 ties, 7 losses of 20: more wins than losses, but not beyond chance
        PromotionGate.Decision close = PromotionGate.decide(record(11, 2, 20), "v2", "v1");
        assertFalse(close.allowed(), close.reason());
        assertTrue(close.winRate().low() < 0.5 && close.winRate().estimate() > 0.5, close.reason());
    }

    @Test
    void aVersionNeverComparedWithItsParentIsNotPromoted() {
        PromotionGate.Decision d = PromotionGate.decide(record(45, 0, 60), "v4", "v1");
        assertFalse(d.allowed());
        assertTrue(d.reason().contains("never compared"), d.reason());
    }

    @Test
    void theIntervalIsTheSameForTheSameJudgments() {
        BradleyTerry.Interval a = BradleyTerry.winRateInterval(record(30, 5, 50), "v2", "v1", 2000, 17);
        BradleyTerry.Interval b = BradleyTerry.winRateInterval(record(30, 5, 50), "v2", "v1", 2000, 17);
        assertEquals(a, b);
        assertEquals(0.65, a.estimate(), 1e-9);
        // the normal approximation's half-width for p = 0.65, n = 50 is about 0.13
        assertEquals(0.13, (a.high() - a.low()) / 2, 0.03);
    }
}
