package org.prefloop.collect;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

import java.time.OffsetDateTime;
import java.util.List;
import java.util.UUID;

/** A stored judgment. Rows are written only by the ingest consumer, once per event id. */
@Entity
@Table(name = "preferences")
public class Preference extends PanacheEntityBase {
    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    @Column(name = "event_id")
    public UUID eventId;

    @Column(name = "comparison_id")
    public long comparisonId;

    public String annotator;

    /** The verdict in its wire form (A, B, tie, both_bad); see {@link Choice}. */
    public String choice;

    public String rationale;

    @Column(name = "time_spent_ms")
    public Long timeSpentMs;

    @Column(name = "submitted_at")
    public OffsetDateTime submittedAt;

    /** Null for a person; the checker or LLM judge that made this judgment otherwise. */
    public String judge;

    /** How much better (much_better, better, slightly_better) for an A or B verdict; null when not said. */
    public String strength;

    /** The per-criterion verdicts as a JSON object (criterion: A, B, tie or both_bad); null when none. */
    public String criteria;

    @Column(name = "stored_at", insertable = false, updatable = false)
    public OffsetDateTime storedAt;

    public static List<Preference> forComparison(long comparisonId) {
        return list("comparisonId = ?1 order by submittedAt, id", comparisonId);
    }
}
