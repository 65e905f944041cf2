package org.prefloop.serve;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

/** One answer /v1 gave, kept by its completion id (see {@link CompletionLog}). */
@Entity
@Table(name = "completion_log")
public class CompletionLogEntry extends PanacheEntityBase {
    /** The completion's id as /v1 returned it ({@code chatcmpl-...}). */
    @Id
    public String id;

    /** The registry version that answered. */
    @Column(name = "model_name")
    public String modelName;

    /** The request's messages, as JSON. */
    public String prompt;

    public String completion;
}
