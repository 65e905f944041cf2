package org.prefloop.runs;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

import java.time.OffsetDateTime;

/** A training run: its spec, where it stands, who holds it, and what it produced. */
@Entity
@Table(name = "training_runs")
public class TrainingRun extends PanacheEntityBase {
    public static final String QUEUED = "queued";
    public static final String RUNNING = "running";
    public static final String SUCCEEDED = "succeeded";
    public static final String FAILED = "failed";
    public static final String CANCELLED = "cancelled";

    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;
    public String name;
    public String status;
    public String spec;
    public String preflight;
    @Column(name = "parent_version_id")
    public Long parentVersionId;
    @Column(name = "dataset_hashes")
    public String datasetHashes;
    @Column(name = "created_by")
    public String createdBy;
    @Column(name = "created_at", insertable = false, updatable = false)
    public OffsetDateTime createdAt;
    @Column(name = "started_at")
    public OffsetDateTime startedAt;
    @Column(name = "finished_at")
    public OffsetDateTime finishedAt;
    public String stage;
    public Integer step;
    @Column(name = "total_steps")
    public Integer totalSteps;
    public int attempts;
    public String worker;
    @Column(name = "lease_until")
    public OffsetDateTime leaseUntil;
    @Column(name = "cancel_requested")
    public boolean cancelRequested;
    public String error;
    public String summary;
    @Column(name = "model_version_id")
    public Long modelVersionId;

    public boolean finished() {
        return status.equals(SUCCEEDED) || status.equals(FAILED) || status.equals(CANCELLED);
    }
}
