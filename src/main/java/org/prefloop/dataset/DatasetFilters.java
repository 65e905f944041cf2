package org.prefloop.dataset;

import java.time.Instant;
import java.util.List;

/**
 * Which stored judgments a frozen dataset takes. Every field is optional.
 *
 * @param from              judgments submitted at or after this instant
 * @param to                judgments submitted before this instant
 * @param annotators        only these annotators' judgments (all when empty)
 * @param minVotes          comparisons with fewer judgments are left out
 * @param minAgreement      comparisons whose consensus has a smaller share of the votes are left out
 * @param includeJudges     whether judgments by a checker or an LLM judge count as votes (default: humans only)
 * @param weightByAgreement whether each pair's weight is its agreement (default: weight 1)
 * @param judgeMinAgreement with includeJudges, only judges whose labels agree with people's at least
 *                          this often (on comparisons both judged) count; the others are left out
 * @param preferAdjudicated whether an admin's adjudication of a comparison replaces its vote (default: yes)
 * @param criterion         the pairs by this criterion's verdicts instead of the overall one (only votes that judged it count)
 * @param weightByStrength  whether each pair's weight is (also) multiplied by its margin, how much better by the
 *                          votes' strengths; pairs whose margin is not positive are left out
 */
public record DatasetFilters(Instant from, Instant to, List<String> annotators, Integer minVotes, Double minAgreement,
                             Boolean includeJudges, Boolean weightByAgreement, Double judgeMinAgreement, Boolean preferAdjudicated,
                             String criterion, Boolean weightByStrength) {
    public static final DatasetFilters NONE = new DatasetFilters(null, null, null, null, null, null, null, null, null, null, null);

    boolean strengthWeighted() {
        return Boolean.TRUE.equals(weightByStrength);
    }

    boolean adjudicationsPreferred() {
        return !Boolean.FALSE.equals(preferAdjudicated);
    }

    boolean judgesIncluded() {
        return Boolean.TRUE.equals(includeJudges);
    }

    boolean weighted() {
        return Boolean.TRUE.equals(weightByAgreement);
    }

    int votesNeeded() {
        return minVotes == null ? 1 : minVotes;
    }

    double agreementNeeded() {
        return minAgreement == null ? 0 : minAgreement;
    }
}
