package org.prefloop.eval;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Whether a candidate version's held-out evaluation beats its parent's beyond chance: both
 * evaluated on the same file (same hash, same method), the difference of their scores with a 95%
 * paired bootstrap interval (the examples resampled with replacement, each keeping both versions'
 * outcomes, seeded, so the same evaluations give the same answer); allowed only when the
 * interval's lower bound is above zero. A candidate or parent never evaluated is refused, with
 * what to run.
 */
public final class EvaluationGate {
    private EvaluationGate() {
    }

    /** The gate's answer, the figures it rests on (null when there was nothing to compare), and a sentence a person can read. */
    public record Decision(boolean allowed, Double candidateScore, Double parentScore, BradleyTerry.Interval difference, String reason) {
    }

    /** Decides from the database: the candidate's latest evaluation for which the parent has one on the same file. */
    public static Decision decide(String candidate, String parent) {
        List<HeldOutEvaluation> mine = HeldOutEvaluation.list("modelName = ?1 order by id desc", candidate);
        if (mine.isEmpty()) {
            return new Decision(false, null, null, null, candidate + " has no held-out evaluation; evaluate it and its parent " + parent
                    + " on the same file first (POST /api/evaluations with model " + candidate + ", then with model " + parent + ")");
        }
        for (HeldOutEvaluation c : mine) {
            var p = HeldOutEvaluation.latest(parent, c.fileSha256, c.method);
            if (p.isPresent()) return decide(c, p.get(), parent);
        }
        return new Decision(false, null, null, null, "its parent " + parent + " was never evaluated on the file " + candidate
                + " was (" + mine.get(0).file + "); POST /api/evaluations with that file and model " + parent);
    }

    static Decision decide(HeldOutEvaluation c, HeldOutEvaluation p, String parent) {
        BradleyTerry.Interval d = difference(c.outcomeArray(), p.outcomeArray(), 2000, 17);
        String figures = String.format(Locale.ROOT, "%s %.3f against %.3f for %s on %d examples of %s, difference %+.3f, 95%% interval [%+.3f, %+.3f]",
                c.method.replace('_', ' '), c.score, p.score, parent, c.examples, c.file, d.estimate(), d.low(), d.high());
        if (d.low() > 0) return new Decision(true, c.score, p.score, d, c.modelName + " beats its parent on held-out examples: " + figures);
        return new Decision(false, c.score, p.score, d, c.modelName + " does not beat its parent on held-out examples beyond chance: " + figures);
    }

    /**
     * The candidate's score minus the parent's on the same examples (outcomes in the same order),
     * with a 95% paired bootstrap interval; {@code matches} is the number of examples.
     */
    public static BradleyTerry.Interval difference(boolean[] candidate, boolean[] parent, int samples, long seed) {
        if (candidate.length != parent.length) throw new IllegalArgumentException("the evaluations cover " + candidate.length + " and " + parent.length + " examples");
        int n = candidate.length;
        if (n == 0) return new BradleyTerry.Interval(Double.NaN, Double.NaN, Double.NaN, 0);
        int[] delta = new int[n];
        long sum = 0;
        for (int i = 0; i < n; i++) {
            delta[i] = (candidate[i] ? 1 : 0) - (parent[i] ? 1 : 0);
            sum += delta[i];
        }
        Random random = new Random(seed);
        double[] means = new double[samples];
        for (int b = 0; b < samples; b++) {
            long s = 0;
            for (int i = 0; i < n; i++) s += delta[random.nextInt(n)];
            means[b] = (double) s / n;
        }
        Arrays.sort(means);
        return new BradleyTerry.Interval((double) sum / n, means[(int) Math.floor(0.025 * (samples - 1))], means[(int) Math.ceil(0.975 * (samples - 1))], n);
    }
}
