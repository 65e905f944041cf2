package org.prefloop.eval;

import java.util.Collection;
import java.util.Locale;

/**
 * Whether a candidate version may replace its parent: it must have beaten the parent head to head
 * beyond chance, the lower bound of its win rate's 95% bootstrap interval above one half. A
 * version that lost, tied, or was never compared stays unpromoted, with the figures that say why.
 */
public final class PromotionGate {
    private PromotionGate() {
    }

    /** The gate's answer: allowed or not, the interval it rests on, and a sentence a person can read. */
    public record Decision(boolean allowed, BradleyTerry.Interval winRate, String reason) {
    }

    public static Decision decide(Collection<BradleyTerry.Match> matches, String candidate, String parent) {
        BradleyTerry.Interval w = BradleyTerry.winRateInterval(matches, candidate, parent);
        if (w.matches() == 0) {
            return new Decision(false, w, candidate + " was never compared with its parent " + parent
                    + "; run a head-to-head round (POST /api/rounds with mode versions) and judge it first");
        }
        String figures = String.format(Locale.ROOT, "win rate %.3f against %s over %d judgments, 95%% interval [%.3f, %.3f]",
                w.estimate(), parent, w.matches(), w.low(), w.high());
        if (w.low() > 0.5) return new Decision(true, w, candidate + " beats its parent: " + figures);
        return new Decision(false, w, candidate + " does not beat its parent beyond chance: " + figures);
    }
}
