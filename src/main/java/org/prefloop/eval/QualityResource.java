package org.prefloop.eval;

import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.persistence.EntityManager;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import org.prefloop.collect.Assignment;
import org.prefloop.identity.User;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * How trustworthy the people's judgments are: agreement on overlapping comparisons (Cohen's
 * kappa per pair, Krippendorff's alpha overall), position bias, each annotator's agreement with
 * the others' majority, and how many pairs a dataset keeps at each agreement threshold (a small
 * consistent set trains better than a large noisy one). Judges' verdicts are left out.
 */
@Path("/api/quality")
@Produces(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class QualityResource {
    static final double[] THRESHOLDS = {0.5, 0.6, 0.67, 0.75, 0.8, 0.9, 1.0};

    @Inject
    EntityManager em;

    public record Pair(String first, String second, int sharedItems, Double kappa) {
    }

    /**
     * One row of the annotators' leaderboard. {@code leftShare}: share of decisive verdicts that picked the
     * response shown on the left; {@code medianTimeMs}: time per judgment; {@code goldAccuracy}: share of gold
     * answers that matched the known answer (all time); {@code paused}: why the queue gives them nothing, or null.
     */
    public record Annotator(String annotator, int judgments, Double agreementWithMajority, Double leftShare, Long medianTimeMs,
                            long goldAnswered, Double goldAccuracy, String paused) {
    }

    /** Comparisons with at least two votes whose majority is A or B with at least this share. */
    public record Kept(double minAgreement, int pairs) {
    }

    /** {@code aShare}: share of decisive verdicts for response A in the comparisons' own order. */
    public record Quality(int judgments, int overlappingComparisons, Double alpha, Double leftShare, Double aShare,
                          List<Pair> pairs, List<Annotator> annotators, List<Kept> kept) {
    }

    @GET
    public Quality quality() {
        @SuppressWarnings("unchecked")
        List<Object[]> rows = em.createNativeQuery("select p.comparison_id, p.annotator, p.choice, a.swapped from preferences p "
                + "left join assignments a on a.comparison_id = p.comparison_id and a.annotator = p.annotator "
                + "where p.judge is null order by p.id").getResultList();
        List<Agreement.Label> labels = new ArrayList<>();
        Map<String, List<String>> shownBy = new HashMap<>();
        List<String> shownAll = new ArrayList<>();
        List<String> ordered = new ArrayList<>();
        for (Object[] r : rows) {
            String choice = (String) r[2];
            labels.add(new Agreement.Label(String.valueOf(r[0]), (String) r[1], choice));
            ordered.add(choice);
            if (r[3] != null) {
                String shown = Assignment.shown(choice, (Boolean) r[3]);
                shownBy.computeIfAbsent((String) r[1], k -> new ArrayList<>()).add(shown);
                shownAll.add(shown);
            }
        }
        Map<String, Agreement.Consensus> consensus = Agreement.consensus(labels);
        int overlapping = (int) consensus.values().stream().filter(c -> c.votes() >= 2).count();
        Map<String, Double> withMajority = Agreement.agreementWithMajority(labels);
        Map<String, Integer> counts = new HashMap<>();
        labels.forEach(l -> counts.merge(l.annotator(), 1, Integer::sum));
        Map<String, Long> medianTime = medianTimes();
        Map<String, long[]> gold = goldAnswers();
        Map<String, String> paused = paused();
        // the leaderboard: most judgments first
        List<Annotator> annotators = counts.keySet().stream()
                .sorted(java.util.Comparator.comparing((String a) -> -counts.get(a)).thenComparing(a -> a))
                .map(a -> {
                    long[] g = gold.getOrDefault(a, new long[2]);
                    return new Annotator(a, counts.get(a), withMajority.get(a),
                            finite(Agreement.shareOfLeftChoices(shownBy.getOrDefault(a, List.of()))), medianTime.get(a), g[0],
                            g[0] == 0 ? null : (double) g[1] / g[0], paused.get(a));
                })
                .toList();
        List<Pair> pairs = Agreement.pairwiseKappa(labels).stream()
                .map(p -> new Pair(p.first(), p.second(), p.sharedItems(), finite(p.kappa()))).toList();
        List<Kept> kept = new ArrayList<>();
        for (double t : THRESHOLDS) {
            kept.add(new Kept(t, (int) consensus.values().stream().filter(c -> c.votes() >= 2 && c.agreement() >= t - 1e-9
                    && ("A".equals(c.label()) || "B".equals(c.label()))).count()));
        }
        return new Quality(labels.size(), overlapping, overlapping == 0 ? null : finite(Agreement.krippendorffAlpha(labels)),
                finite(Agreement.shareOfLeftChoices(shownAll)), finite(Agreement.shareOfLeftChoices(ordered)), pairs, annotators, kept);
    }

    @SuppressWarnings("unchecked")
    private Map<String, Long> medianTimes() {
        Map<String, List<Long>> times = new HashMap<>();
        for (Object[] r : (List<Object[]>) em.createNativeQuery("select annotator, time_spent_ms from preferences "
                + "where judge is null and time_spent_ms is not null").getResultList()) {
            times.computeIfAbsent((String) r[0], k -> new ArrayList<>()).add(((Number) r[1]).longValue());
        }
        Map<String, Long> out = new HashMap<>();
        times.forEach((a, t) -> {
            t.sort(null);
            int n = t.size();
            out.put(a, n % 2 == 1 ? t.get(n / 2) : (t.get(n / 2 - 1) + t.get(n / 2)) / 2);
        });
        return out;
    }

    /** Per annotator: gold answers given, and how many matched the known answer. */
    @SuppressWarnings("unchecked")
    private Map<String, long[]> goldAnswers() {
        Map<String, long[]> out = new HashMap<>();
        for (Object[] r : (List<Object[]>) em.createNativeQuery("select p.annotator, count(*), sum(case when p.choice = g.choice then 1 else 0 end) "
                + "from preferences p join gold_answers g on g.comparison_id = p.comparison_id where p.judge is null group by p.annotator")
                .getResultList()) {
            out.put((String) r[0], new long[]{((Number) r[1]).longValue(), ((Number) r[2]).longValue()});
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    private Map<String, String> paused() {
        Map<String, String> out = new HashMap<>();
        for (Object[] r : (List<Object[]>) em.createNativeQuery("select annotator, reason from annotator_pauses where paused_at is not null")
                .getResultList()) {
            out.put((String) r[0], (String) r[1]);
        }
        return out;
    }

    public record JudgeView(String judge, int shared, Double agreement) {
    }

    /** Each judge's agreement with people on the comparisons both judged (the LLM judge's trust figure). */
    @GET
    @Path("/judges")
    public List<JudgeView> judges() {
        return JudgeAgreement.of(labels(false), labels(true)).stream()
                .map(s -> new JudgeView(s.judge(), s.shared(), finite(s.agreement()))).toList();
    }

    /** Every stored label, people's ({@code judges} false) or judges' (the judge's name as annotator). */
    @SuppressWarnings("unchecked")
    List<Agreement.Label> labels(boolean judges) {
        List<Object[]> rows = em.createNativeQuery("select p.comparison_id, " + (judges ? "p.judge" : "p.annotator") + ", p.choice from preferences p where p.judge is "
                + (judges ? "not null" : "null") + " order by p.id").getResultList();
        return rows.stream().map(r -> new Agreement.Label(String.valueOf(r[0]), (String) r[1], (String) r[2])).toList();
    }

    private static Double finite(double v) {
        return Double.isFinite(v) ? v : null;
    }
}
