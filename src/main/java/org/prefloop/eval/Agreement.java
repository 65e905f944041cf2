package org.prefloop.eval;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Inter-annotator agreement on categorical judgments (A, B, tie, both_bad). Quality over
 * quantity: a preference set is only as useful as annotators agree, so these numbers decide
 * which comparisons become training pairs and with what weight.
 */
public final class Agreement {
    private Agreement() {
    }

    /** One judgment: which annotator gave which label to which item. */
    public record Label(String item, String annotator, String value) {
        public Label {
            Objects.requireNonNull(item, "item");
            Objects.requireNonNull(annotator, "annotator");
            Objects.requireNonNull(value, "value");
        }
    }

    /**
     * Cohen's kappa between two annotators over the items both labelled:
     * (observed agreement - chance agreement) / (1 - chance agreement), chance from each
     * annotator's own label distribution. NaN when they share no item.
     */
    public static double cohensKappa(Collection<Label> labels, String first, String second) {
        Map<String, String> a = byItem(labels, first);
        Map<String, String> b = byItem(labels, second);
        List<String> shared = a.keySet().stream().filter(b::containsKey).sorted().toList();
        if (shared.isEmpty()) return Double.NaN;
        Map<String, Integer> countA = new HashMap<>();
        Map<String, Integer> countB = new HashMap<>();
        int agree = 0;
        for (String item : shared) {
            String la = a.get(item);
            String lb = b.get(item);
            if (la.equals(lb)) agree++;
            countA.merge(la, 1, Integer::sum);
            countB.merge(lb, 1, Integer::sum);
        }
        double n = shared.size();
        double observed = agree / n;
        double chance = 0;
        for (Map.Entry<String, Integer> e : countA.entrySet()) {
            chance += (e.getValue() / n) * (countB.getOrDefault(e.getKey(), 0) / n);
        }
        if (chance == 1.0) return observed == 1.0 ? 1.0 : Double.NaN;
        return (observed - chance) / (1 - chance);
    }

    private static Map<String, String> byItem(Collection<Label> labels, String annotator) {
        Map<String, String> out = new HashMap<>();
        for (Label l : labels) if (l.annotator().equals(annotator)) out.put(l.item(), l.value());
        return out;
    }

    /**
     * Krippendorff's alpha for nominal data, any number of annotators, missing labels allowed:
     * 1 - observed disagreement / expected disagreement, built from the coincidence matrix of
     * pairable values (items with fewer than two labels carry no information and are skipped).
     * NaN when fewer than two pairable values exist.
     */
    public static double krippendorffAlpha(Collection<Label> labels) {
        Map<String, List<String>> byItem = new HashMap<>();
        for (Label l : labels) byItem.computeIfAbsent(l.item(), k -> new ArrayList<>()).add(l.value());
        Map<String, Map<String, Double>> coincidence = new HashMap<>();
        for (List<String> values : byItem.values()) {
            int m = values.size();
            if (m < 2) continue;
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < m; j++) {
                    if (i == j) continue;
                    coincidence.computeIfAbsent(values.get(i), k -> new HashMap<>())
                            .merge(values.get(j), 1.0 / (m - 1), Double::sum);
                }
            }
        }
        Map<String, Double> marginal = new HashMap<>();
        double n = 0;
        double agreeing = 0;
        for (Map.Entry<String, Map<String, Double>> row : coincidence.entrySet()) {
            for (Map.Entry<String, Double> cell : row.getValue().entrySet()) {
                marginal.merge(row.getKey(), cell.getValue(), Double::sum);
                n += cell.getValue();
                if (row.getKey().equals(cell.getKey())) agreeing += cell.getValue();
            }
        }
        if (n < 2) return Double.NaN;
        double expectedAgreeing = 0;
        for (double nc : marginal.values()) expectedAgreeing += nc * (nc - 1);
        double observedDisagreement = n - agreeing;
        double expectedDisagreement = (n * (n - 1) - expectedAgreeing) / (n - 1);
        if (expectedDisagreement == 0) return observedDisagreement == 0 ? 1.0 : Double.NaN;
        return 1 - observedDisagreement / expectedDisagreement;
    }

    /** The majority label per item (null on a tie between the most frequent labels). */
    public static Map<String, String> majority(Collection<Label> labels) {
        Map<String, Map<String, Integer>> counts = new HashMap<>();
        for (Label l : labels) counts.computeIfAbsent(l.item(), k -> new HashMap<>()).merge(l.value(), 1, Integer::sum);
        Map<String, String> out = new HashMap<>();
        counts.forEach((item, c) -> {
            int best = c.values().stream().mapToInt(Integer::intValue).max().orElse(0);
            List<String> top = c.entrySet().stream().filter(e -> e.getValue() == best).map(Map.Entry::getKey).toList();
            out.put(item, top.size() == 1 ? top.get(0) : null);
        });
        return out;
    }

    /** Share of items on which the majority label was given, and how many items the majority rests on. */
    public record Consensus(String label, double agreement, int votes) {
    }

    /** Consensus per item: the majority label and the share of votes that agree with it. */
    public static Map<String, Consensus> consensus(Collection<Label> labels) {
        Map<String, Map<String, Integer>> counts = new HashMap<>();
        for (Label l : labels) counts.computeIfAbsent(l.item(), k -> new HashMap<>()).merge(l.value(), 1, Integer::sum);
        Map<String, String> majority = majority(labels);
        Map<String, Consensus> out = new HashMap<>();
        counts.forEach((item, c) -> {
            int votes = c.values().stream().mapToInt(Integer::intValue).sum();
            String label = majority.get(item);
            double share = label == null ? c.values().stream().mapToInt(Integer::intValue).max().orElse(0) / (double) votes
                    : c.get(label) / (double) votes;
            out.put(item, new Consensus(label, share, votes));
        });
        return out;
    }

    /**
     * Per annotator, the share of their labels that match the majority of the OTHER annotators
     * on the same item (leave-one-out, so an annotator cannot agree with themselves). Items
     * where the others have no single majority are skipped.
     */
    public static Map<String, Double> agreementWithMajority(Collection<Label> labels) {
        Map<String, List<Label>> byItem = new HashMap<>();
        for (Label l : labels) byItem.computeIfAbsent(l.item(), k -> new ArrayList<>()).add(l);
        Map<String, int[]> tally = new HashMap<>();
        for (List<Label> itemLabels : byItem.values()) {
            for (Label l : itemLabels) {
                List<Label> others = itemLabels.stream().filter(o -> !o.annotator().equals(l.annotator())).toList();
                if (others.isEmpty()) continue;
                String majority = majority(others).get(l.item());
                if (majority == null) continue;
                int[] t = tally.computeIfAbsent(l.annotator(), k -> new int[2]);
                if (majority.equals(l.value())) t[0]++;
                t[1]++;
            }
        }
        Map<String, Double> out = new HashMap<>();
        tally.forEach((annotator, t) -> out.put(annotator, t[0] / (double) t[1]));
        return out;
    }

    /** Every annotator pair that shares at least one item, with Cohen's kappa, for the dashboard's matrix. */
    public record PairKappa(String first, String second, int sharedItems, double kappa) {
    }

    public static List<PairKappa> pairwiseKappa(Collection<Label> labels) {
        Map<String, Set<String>> itemsOf = new HashMap<>();
        for (Label l : labels) itemsOf.computeIfAbsent(l.annotator(), k -> new HashSet<>()).add(l.item());
        List<String> annotators = itemsOf.keySet().stream().sorted().toList();
        List<PairKappa> out = new ArrayList<>();
        for (int i = 0; i < annotators.size(); i++) {
            for (int j = i + 1; j < annotators.size(); j++) {
                Set<String> shared = new HashSet<>(itemsOf.get(annotators.get(i)));
                shared.retainAll(itemsOf.get(annotators.get(j)));
                if (shared.isEmpty()) continue;
                out.add(new PairKappa(annotators.get(i), annotators.get(j), shared.size(),
                        cohensKappa(labels, annotators.get(i), annotators.get(j))));
            }
        }
        return out;
    }

    /**
     * Position bias: the share of decisive judgments (A or B, as shown on screen) that picked
     * the left-hand response. 0.5 is unbiased; with randomised positions any large deviation
     * is the annotator, not the data.
     */
    public static double shareOfLeftChoices(Collection<String> shownChoices) {
        long decisive = shownChoices.stream().filter(c -> c.equals("A") || c.equals("B")).count();
        if (decisive == 0) return Double.NaN;
        return shownChoices.stream().filter("A"::equals).count() / (double) decisive;
    }
}
