package org.prefloop.eval;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * How often a judge (a checker or an LLM) agrees with people: over the comparisons that both the
 * judge and at least one person judged and on which people reached a majority, the share where
 * the judge's label is the people's. A team trusts a judge's labels only above a threshold.
 */
public final class JudgeAgreement {
    private JudgeAgreement() {
    }

    /** @param shared comparisons judged by both; @param agreement share of those with the people's label (NaN when none) */
    public record Score(String judge, int shared, double agreement) {
        public boolean atLeast(double threshold) {
            return shared > 0 && agreement >= threshold - 1e-9;
        }
    }

    /** @param human people's labels; @param judges judges' labels, the judge's name as annotator */
    public static List<Score> of(Collection<Agreement.Label> human, Collection<Agreement.Label> judges) {
        Map<String, String> people = Agreement.majority(human);
        Map<String, int[]> counts = new TreeMap<>();
        for (Agreement.Label j : judges) {
            int[] c = counts.computeIfAbsent(j.annotator(), k -> new int[2]);
            String majority = people.get(j.item());
            if (majority == null) continue;
            c[0]++;
            if (majority.equals(j.value())) c[1]++;
        }
        List<Score> out = new ArrayList<>();
        counts.forEach((judge, c) -> out.add(new Score(judge, c[0], c[0] == 0 ? Double.NaN : (double) c[1] / c[0])));
        return out;
    }
}
