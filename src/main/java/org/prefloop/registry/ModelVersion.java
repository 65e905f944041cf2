package org.prefloop.registry;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

import java.time.OffsetDateTime;
import java.util.Optional;

/**
 * A model version in the registry: a base checkpoint plus, for trained versions, a PEFT
 * adapter, with the lineage that made it. The promoted version is the one with the latest
 * promotion time; rolling back is promoting an earlier version again.
 */
@Entity
@Table(name = "model_versions")
public class ModelVersion extends PanacheEntityBase {
    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    public String name;

    @Column(name = "parent_id")
    public Long parentId;

    @Column(name = "base_model")
    public String baseModel;

    @Column(name = "adapter_path")
    public String adapterPath;

    @Column(name = "run_id")
    public Long runId;

    @Column(name = "dataset_hashes")
    public String datasetHashes;

    @Column(name = "run_spec")
    public String runSpec;

    public String metrics;

    public String forgetting;

    @Column(name = "created_at", insertable = false, updatable = false)
    public OffsetDateTime createdAt;

    @Column(name = "promoted_at")
    public OffsetDateTime promotedAt;

    public static Optional<ModelVersion> promoted() {
        return find("promotedAt is not null order by promotedAt desc, id desc").firstResultOptional();
    }

    public static Optional<ModelVersion> byName(String name) {
        return find("name", name).firstResultOptional();
    }
}
