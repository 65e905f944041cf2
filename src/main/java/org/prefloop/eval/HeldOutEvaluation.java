package org.prefloop.eval;

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
 * One held-out evaluation of a model version: the file (and its hash), the score and each
 * example's outcome in file order, so that two versions evaluated on the same file can be
 * compared prompt by prompt ({@link EvaluationGate}).
 */
@Entity
@Table(name = "held_out_evaluations")
public class HeldOutEvaluation extends PanacheEntityBase {
    public static final String EXACT_MATCH = "exact_match";

    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    @Column(name = "model_name")
    public String modelName;

    public String file;

    @Column(name = "file_sha256")
    public String fileSha256;

    public String method;

    public int examples;

    public int correct;

    public double score;

    /** '1' for a correct example, '0' for a wrong one, in file order. */
    public String outcomes;

    @Column(name = "created_at", insertable = false, updatable = false)
    public OffsetDateTime createdAt;

    public boolean[] outcomeArray() {
        boolean[] out = new boolean[outcomes.length()];
        for (int i = 0; i < out.length; i++) out[i] = outcomes.charAt(i) == '1';
        return out;
    }

    /** The latest evaluation of {@code model} on the file with this hash by this method. */
    public static Optional<HeldOutEvaluation> latest(String model, String fileSha256, String method) {
        return find("modelName = ?1 and fileSha256 = ?2 and method = ?3 order by id desc", model, fileSha256, method).firstResultOptional();
    }

    /** The latest evaluation of {@code model}, on any file. */
    public static Optional<HeldOutEvaluation> latest(String model) {
        return find("modelName = ?1 order by id desc", model).firstResultOptional();
    }
}
