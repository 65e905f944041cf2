package org.prefloop.collect;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import jakarta.persistence.EntityManager;
import jakarta.transaction.Transactional;
import org.prefloop.platform.Settings;

import java.security.SecureRandom;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Optional;

/**
 * Gold items: comparisons with a known answer (table {@code gold_answers}). The queue mixes them in
 * at {@code prefloop.gold.rate}, never showing one person the same gold twice; they take no slot of
 * the overlap and never reach a dataset. An annotator whose gold accuracy since their last resume is
 * below {@code prefloop.gold.pause-below}, over at least {@code prefloop.gold.min-answers} gold
 * answers, is paused until an admin resumes them.
 */
@ApplicationScoped
public class GoldItems {
    private final SecureRandom random = new SecureRandom();

    double rate;
    int minAnswers;
    double pauseBelow;

    @Inject
    void configure(Settings settings) {
        rate = settings.gold().rate();
        minAnswers = settings.gold().minAnswers();
        pauseBelow = settings.gold().pauseBelow();
    }

    /** Gold answers given since the last resume, and how many matched the known answer. */
    public record Score(long answered, long correct) {
        public Double accuracy() {
            return answered == 0 ? null : (double) correct / answered;
        }
    }

    /** SQL: the comparison is a gold item (for the queue's and the datasets' filters). */
    public static final String IS_GOLD = "exists (select 1 from gold_answers g where g.comparison_id = %s)";

    /** Whether this draw of the queue should be a gold item. */
    boolean draw() {
        return rate > 0 && random.nextDouble() < rate;
    }

    /** A gold comparison this annotator has not been shown nor judged, if any. */
    Optional<Long> unseen(EntityManager em, String annotator) {
        @SuppressWarnings("unchecked")
        List<Number> ids = em.createNativeQuery("select g.comparison_id from gold_answers g "
                        + "where not exists (select 1 from assignments a where a.comparison_id = g.comparison_id and a.annotator = ?1) "
                        + "and not exists (select 1 from preferences p where p.comparison_id = g.comparison_id and p.annotator = ?1) "
                        + "and not exists (select 1 from judgment_claims j where j.comparison_id = g.comparison_id and j.annotator = ?1) "
                        + "order by g.created_at, g.comparison_id limit 1")
                .setParameter(1, annotator).getResultList();
        return ids.isEmpty() ? Optional.empty() : Optional.of(ids.get(0).longValue());
    }

    /** The reason this annotator is paused, or empty; pauses them first if their gold accuracy fell too low. */
    @Transactional
    public Optional<String> pause(String annotator) {
        EntityManager em = Assignment.getEntityManager();
        @SuppressWarnings("unchecked")
        List<Object[]> row = em.createNativeQuery("select paused_at, reason from annotator_pauses where annotator = ?1")
                .setParameter(1, annotator).getResultList();
        if (!row.isEmpty() && row.get(0)[0] != null) return Optional.of((String) row.get(0)[1]);
        Score s = score(em, annotator);
        if (s.answered() < minAnswers || s.accuracy() >= pauseBelow) return Optional.empty();
        String reason = String.format("%d of %d gold answers right (%.0f%%, below %.0f%%)", s.correct(), s.answered(),
                100 * s.accuracy(), 100 * pauseBelow);
        em.createNativeQuery(row.isEmpty() ? "insert into annotator_pauses (paused_at, reason, annotator) values (?1, ?2, ?3)"
                        : "update annotator_pauses set paused_at = ?1, reason = ?2 where annotator = ?3")
                .setParameter(1, OffsetDateTime.now()).setParameter(2, reason).setParameter(3, annotator).executeUpdate();
        return Optional.of(reason);
    }

    /** Gold answers since the annotator's last resume (all of them if never resumed). */
    public static Score score(EntityManager em, String annotator) {
        Object[] r = (Object[]) em.createNativeQuery("select count(*), coalesce(sum(case when p.choice = g.choice then 1 else 0 end), 0) "
                        + "from preferences p join gold_answers g on g.comparison_id = p.comparison_id "
                        + "where p.annotator = ?1 and p.judge is null and p.submitted_at > coalesce("
                        + "(select resumed_at from annotator_pauses where annotator = ?1), timestamp '1970-01-01 00:00:00')")
                .setParameter(1, annotator).getSingleResult();
        return new Score(((Number) r[0]).longValue(), ((Number) r[1]).longValue());
    }
}
