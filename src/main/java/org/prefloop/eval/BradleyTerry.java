package org.prefloop.eval;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Ratings of model versions from head-to-head judgments. The Bradley-Terry model says
 * P(i beats j) = p_i / (p_i + p_j); the strengths are fitted by Hunter's MM iteration, a tie
 * counting as half a win for each side. Ratings are reported on the Elo scale
 * (400 * log10 of strength), anchored so that the mean rating is 1000.
 */
public final class BradleyTerry {
    private BradleyTerry() {
    }

    /** One judged match: the winner, the loser, and whether it was a tie. */
    public record Match(String first, String second, Outcome outcome) {
    }

    public enum Outcome { FIRST_WINS, SECOND_WINS, TIE }

    /** A version's rating, with its record, for the dashboard and the registry. */
    public record Rating(String version, double rating, double wins, int matches) {
    }

    public static List<Rating> fit(Collection<Match> matches) {
        TreeSet<String> names = new TreeSet<>();
        for (Match m : matches) {
            names.add(m.first());
            names.add(m.second());
        }
        List<String> players = new ArrayList<>(names);
        int n = players.size();
        Map<String, Integer> index = new HashMap<>();
        for (int i = 0; i < n; i++) index.put(players.get(i), i);
        double[] wins = new double[n];
        double[][] games = new double[n][n];
        int[] played = new int[n];
        for (Match m : matches) {
            int a = index.get(m.first());
            int b = index.get(m.second());
            games[a][b]++;
            games[b][a]++;
            played[a]++;
            played[b]++;
            switch (m.outcome()) {
                case FIRST_WINS -> wins[a] += 1;
                case SECOND_WINS -> wins[b] += 1;
                case TIE -> {
                    wins[a] += 0.5;
                    wins[b] += 0.5;
                }
            }
        }
        // A version that never won (or never lost) has no finite maximum-likelihood strength;
        // a small prior of one tie against a virtual average opponent keeps every rating finite.
        double prior = 0.5;
        double[] p = new double[n];
        Arrays.fill(p, 1.0);
        for (int iter = 0; iter < 10_000; iter++) {
            double[] next = new double[n];
            double change = 0;
            for (int i = 0; i < n; i++) {
                double denominator = 2 * prior / (p[i] + 1.0);
                for (int j = 0; j < n; j++) {
                    if (i != j && games[i][j] > 0) denominator += games[i][j] / (p[i] + p[j]);
                }
                next[i] = (wins[i] + prior) / denominator;
            }
            for (int i = 0; i < n; i++) change = Math.max(change, Math.abs(Math.log(next[i]) - Math.log(p[i])));
            p = next;
            if (change < 1e-10) break;
        }
        double logMean = 0;
        for (double v : p) logMean += Math.log(v) / n;
        List<Rating> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new Rating(players.get(i), 1000 + 400 * (Math.log(p[i]) - logMean) / Math.log(10), wins[i], played[i]));
        }
        out.sort((x, y) -> Double.compare(y.rating(), x.rating()));
        return out;
    }

    /** A win rate with its 95% bootstrap interval. */
    public record Interval(double estimate, double low, double high, int matches) {
    }

    /** The same, with 2,000 resamples and a fixed seed: what the ratings page and the promotion gate use. */
    public static Interval winRateInterval(Collection<Match> matches, String version, String opponent) {
        return winRateInterval(matches, version, opponent, 2000, 17);
    }

    /**
     * {@code version}'s win rate against {@code opponent} with a 95% percentile-bootstrap interval
     * (the matches between the two resampled with replacement, seeded, so the same data give the
     * same interval). With no matches the estimate and bounds are NaN.
     */
    public static Interval winRateInterval(Collection<Match> matches, String version, String opponent, int samples, long seed) {
        List<Double> points = new ArrayList<>();
        for (Match m : matches) {
            boolean forward = m.first().equals(version) && m.second().equals(opponent);
            boolean backward = m.first().equals(opponent) && m.second().equals(version);
            if (!forward && !backward) continue;
            points.add(m.outcome() == Outcome.TIE ? 0.5 : (m.outcome() == Outcome.FIRST_WINS) == forward ? 1.0 : 0.0);
        }
        int n = points.size();
        if (n == 0) return new Interval(Double.NaN, Double.NaN, Double.NaN, 0);
        double estimate = points.stream().mapToDouble(Double::doubleValue).average().orElseThrow();
        java.util.Random random = new java.util.Random(seed);
        double[] means = new double[samples];
        for (int b = 0; b < samples; b++) {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += points.get(random.nextInt(n));
            means[b] = sum / n;
        }
        Arrays.sort(means);
        return new Interval(estimate, means[(int) Math.floor(0.025 * (samples - 1))], means[(int) Math.ceil(0.975 * (samples - 1))], n);
    }

    /** Share of decisive-or-tied matches that {@code version} won against {@code opponent}, ties counting half. */
    public static double winRate(Collection<Match> matches, String version, String opponent) {
        double won = 0;
        int total = 0;
        for (Match m : matches) {
            boolean forward = m.first().equals(version) && m.second().equals(opponent);
            boolean backward = m.first().equals(opponent) && m.second().equals(version);
            if (!forward && !backward) continue;
            total++;
            if (m.outcome() == Outcome.TIE) won += 0.5;
            else if ((m.outcome() == Outcome.FIRST_WINS) == forward) won += 1;
        }
        return total == 0 ? Double.NaN : won / total;
    }
}
