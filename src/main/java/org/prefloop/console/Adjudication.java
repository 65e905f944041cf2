package org.prefloop.console;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

import java.time.OffsetDateTime;

/** An admin's verdict on a comparison the annotators split on; kept beside the votes (V60). */
@Entity
@Table(name = "adjudications")
public class Adjudication extends PanacheEntityBase {
    @Id
    @Column(name = "comparison_id")
    public Long comparisonId;

    /** A, B, tie or both_bad, in the comparison's own order. */
    public String choice;

    public String note;

    @Column(name = "adjudicated_by")
    public String adjudicatedBy;

    @Column(name = "adjudicated_at")
    public OffsetDateTime adjudicatedAt;
}
