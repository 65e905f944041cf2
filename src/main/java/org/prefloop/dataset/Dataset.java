package org.prefloop.dataset;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

import java.time.OffsetDateTime;

/** A frozen dataset version: its items never change, and its hash says so. */
@Entity
@Table(name = "datasets")
public class Dataset extends PanacheEntityBase {
    public static final String PREFERENCE = "preference";
    public static final String SFT = "sft";
    /** Thumbs up/down on single answers, for KTO (TRL's unpaired format). */
    public static final String KTO = "kto";

    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    public String name;

    public String kind;

    @Column(name = "content_hash")
    public String contentHash;

    /** The filters that selected the items, as JSON. */
    public String filters;

    /** What was considered and why anything was left out, as JSON. */
    public String summary;

    @Column(name = "item_count")
    public int itemCount;

    @Column(name = "created_by")
    public String createdBy;

    @Column(name = "created_at", insertable = false, updatable = false)
    public OffsetDateTime createdAt;
}
