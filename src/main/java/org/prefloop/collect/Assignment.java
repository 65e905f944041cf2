package org.prefloop.collect;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

import java.time.OffsetDateTime;
import java.util.UUID;

/** A comparison handed to one annotator, with the order its responses are shown in. */
@Entity
@Table(name = "assignments")
public class Assignment extends PanacheEntityBase {
    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    @Column(name = "comparison_id")
    public long comparisonId;

    public String annotator;

    /** Response B is on the left. */
    public boolean swapped;

    @Column(name = "assigned_at")
    public OffsetDateTime assignedAt;

    @Column(name = "answered_at")
    public OffsetDateTime answeredAt;

    /** The event id of the judgment that answered it. */
    @Column(name = "event_id")
    public UUID eventId;

    @Column(name = "skipped_at")
    public OffsetDateTime skippedAt;

    /** The choice as the annotator saw it: "A" for the left-hand response, "B" for the right. */
    public static String shown(String choice, boolean swapped) {
        if (!swapped || !(choice.equals("A") || choice.equals("B"))) return choice;
        return choice.equals("A") ? "B" : "A";
    }
}
