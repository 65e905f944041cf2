package org.prefloop.collect;

import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.persistence.EntityManager;
import jakarta.transaction.Transactional;
import org.prefloop.platform.ProblemException;
import org.prefloop.platform.Settings;

import java.security.SecureRandom;
import java.time.Duration;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneId;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Hands out comparisons to annotators. A comparison goes to {@code prefloop.annotation.overlap}
 * annotators and never twice to one person (not even one who judged it through the API); half-
 * covered comparisons go first, so that agreement can be measured early. Slots are taken with a
 * conditional update, so concurrent annotators never overfill a comparison. The left/right order
 * is drawn per assignment and stored. An assignment nobody answers within
 * {@code prefloop.annotation.assignment-ttl} gives its slot back.
 */
@ApplicationScoped
public class TaskQueue {
    private final SecureRandom random = new SecureRandom();

    int overlap;

    /** An assignment left unanswered this long gives its slot back (the annotator went away). */
    Duration ttl;

    int dailyTarget;

    @jakarta.inject.Inject
    void configure(Settings settings) {
        overlap = settings.annotation().overlap();
        ttl = settings.annotation().assignmentTtl();
        dailyTarget = settings.annotation().dailyTarget();
    }

    private final AtomicLong lastSweep = new AtomicLong();

    @jakarta.inject.Inject
    GoldItems gold;

    /** One response as placed on screen; {@code side} is its letter in the comparison's own order. */
    public record Shown(String side, String text) {
    }

    /** What an annotator sees: no model or version names, so that nobody judges by the label. */
    public record Task(long assignmentId, long comparisonId, List<ChatMessage> prompt, Shown left, Shown right) {
    }

    /** {@code dailyTarget}: how many judgments a day the project asks of each annotator (0: none). */
    public record Stats(long today, long total, long open, int dailyTarget) {
    }

    /**
     * The annotator's oldest open assignment not in {@code pending} (judgments the page holds for
     * undo), or a new one; empty when there is nothing left for them.
     */
    @Transactional
    public Optional<Task> next(String annotator, Set<Long> pending) {
        long now = System.currentTimeMillis();
        long last = lastSweep.get();
        if (now - last > 60_000 && lastSweep.compareAndSet(last, now)) releaseExpired(OffsetDateTime.now().minus(ttl));
        List<Assignment> open = Assignment.list("annotator = ?1 and answeredAt is null and skippedAt is null order by id", annotator);
        for (Assignment a : open) {
            // an item someone flagged meanwhile is withheld from open assignments too (they stay open, unanswered)
            if (!pending.contains(a.id) && !Flags.withheld(a.comparisonId)) return Optional.of(task(a));
        }
        EntityManager em = Assignment.getEntityManager();
        // a gold item now and then, unannounced; it takes no slot of the overlap
        Optional<Long> goldItem = gold.draw() ? gold.unseen(em, annotator) : Optional.empty();
        if (goldItem.isPresent()) return Optional.of(task(assign(goldItem.get(), annotator)));
        for (int attempt = 0; attempt < 5; attempt++) {
            @SuppressWarnings("unchecked")
            List<Number> candidate = em.createNativeQuery("select c.id from comparisons c where c.assigned < ?1 "
                            + "and not exists (select 1 from assignments a where a.comparison_id = c.id and a.annotator = ?2) "
                            + "and not exists (select 1 from preferences p where p.comparison_id = c.id and p.annotator = ?2) "
                            + "and not exists (select 1 from judgment_claims j where j.comparison_id = c.id and j.annotator = ?2) "
                            + "and not " + GoldItems.IS_GOLD.formatted("c.id") + " and not " + Flags.WITHHELD.formatted("c.id") + " "
                            + "order by c.assigned desc, c.id limit 1")
                    .setParameter(1, overlap).setParameter(2, annotator).getResultList();
            if (candidate.isEmpty()) return Optional.empty();
            long comparisonId = candidate.get(0).longValue();
            int taken = em.createNativeQuery("update comparisons set assigned = assigned + 1 where id = ?1 and assigned < ?2")
                    .setParameter(1, comparisonId).setParameter(2, overlap).executeUpdate();
            if (taken == 0) continue; // another annotator took the last slot in between
            return Optional.of(task(assign(comparisonId, annotator)));
        }
        return Optional.empty();
    }

    private Assignment assign(long comparisonId, String annotator) {
        Assignment a = new Assignment();
        a.comparisonId = comparisonId;
        a.annotator = annotator;
        a.swapped = random.nextBoolean();
        a.assignedAt = OffsetDateTime.now();
        a.persist();
        return a;
    }

    /**
     * Gives back the slots of assignments handed out before {@code cutoff} and neither answered nor
     * skipped; they count as skipped, so they are not shown to the same person again. Each row is
     * released by a conditional update, so replicas sweeping at once never give a slot back twice.
     */
    @Transactional
    int releaseExpired(OffsetDateTime cutoff) {
        List<Assignment> stale = Assignment.find("answeredAt is null and skippedAt is null and assignedAt < ?1", cutoff).page(0, 500).list();
        int released = 0;
        for (Assignment a : stale) {
            int changed = Assignment.update("skippedAt = ?1 where id = ?2 and skippedAt is null and answeredAt is null", OffsetDateTime.now(), a.id);
            if (changed == 0) continue;
            giveBack(a.comparisonId);
            released++;
        }
        return released;
    }

    /** Skipping hands the slot to someone else; the comparison is not shown to this annotator again. */
    @Transactional
    public void skip(long assignmentId, String annotator) {
        Assignment a = Assignment.findById(assignmentId);
        if (a == null || !a.annotator.equals(annotator)) {
            throw ProblemException.notFound("assignmentId", "you have no assignment " + assignmentId);
        }
        if (a.answeredAt != null) throw ProblemException.conflict("assignmentId", "assignment " + assignmentId + " is already answered");
        if (a.skippedAt != null) return;
        a.skippedAt = OffsetDateTime.now();
        giveBack(a.comparisonId);
    }

    private static void giveBack(long comparisonId) {
        Assignment.getEntityManager().createNativeQuery("update comparisons set assigned = assigned - 1 where id = ?1 and assigned > 0")
                .setParameter(1, comparisonId).executeUpdate();
    }

    /**
     * A person judges a comparison once, assigned or not: the first event id claims (comparison,
     * person) in the store, atomically, so concurrent posts cannot all pass; a retry of the
     * claimed event passes again, any other event id is a 409.
     */
    public void claim(long comparisonId, String annotator, UUID eventId) {
        UUID held = QuarkusTransaction.requiringNew().call(() -> {
            EntityManager em = Assignment.getEntityManager();
            em.createNativeQuery("insert into judgment_claims (comparison_id, annotator, event_id) values (?1, ?2, ?3) on conflict do nothing")
                    .setParameter(1, comparisonId).setParameter(2, annotator).setParameter(3, eventId).executeUpdate();
            Object id = em.createNativeQuery("select event_id from judgment_claims where comparison_id = ?1 and annotator = ?2")
                    .setParameter(1, comparisonId).setParameter(2, annotator).getSingleResult();
            return uuid(id);
        });
        if (!eventId.equals(held)) {
            throw ProblemException.conflict("comparisonId", "you already judged comparison " + comparisonId + " (event " + held + ")");
        }
    }

    /** A uuid column as a native query returns it: a UUID (PostgreSQL), or its 16 bytes (H2). */
    private static UUID uuid(Object value) {
        if (value instanceof UUID u) return u;
        if (value instanceof byte[] b && b.length == 16) {
            java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(b);
            return new UUID(buf.getLong(), buf.getLong());
        }
        return UUID.fromString(value.toString());
    }

    /** Called once Kafka has the judgment, so the next task is never the one just answered. */
    @Transactional
    public void answered(long comparisonId, String annotator, UUID eventId) {
        Assignment.update("answeredAt = ?1, eventId = ?2 where comparisonId = ?3 and annotator = ?4 and answeredAt is null",
                OffsetDateTime.now(), eventId, comparisonId, annotator);
    }

    public Stats stats(String annotator) {
        OffsetDateTime midnight = LocalDate.now().atStartOfDay(ZoneId.systemDefault()).toOffsetDateTime();
        return new Stats(Assignment.count("annotator = ?1 and answeredAt >= ?2", annotator, midnight),
                Assignment.count("annotator = ?1 and answeredAt is not null", annotator),
                Assignment.count("annotator = ?1 and answeredAt is null and skippedAt is null", annotator), dailyTarget);
    }

    private static Task task(Assignment a) {
        Comparison c = Comparison.findById(a.comparisonId);
        Shown first = new Shown("A", c.responseA);
        Shown second = new Shown("B", c.responseB);
        return a.swapped ? new Task(a.id, c.id, c.promptMessages(), second, first)
                : new Task(a.id, c.id, c.promptMessages(), first, second);
    }
}
