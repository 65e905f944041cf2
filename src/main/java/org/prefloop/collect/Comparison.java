package org.prefloop.collect;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

import java.io.UncheckedIOException;
import java.time.OffsetDateTime;
import java.util.List;

/** A prompt (chat messages) and two candidate responses, each with the model and version that wrote it. */
@Entity
@Table(name = "comparisons")
public class Comparison extends PanacheEntityBase {
    static final ObjectMapper JSON = new ObjectMapper();

    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    public Long id;

    /** The conversation so far, as a JSON array of {role, content}. */
    public String prompt;

    @Column(name = "response_a")
    public String responseA;
    @Column(name = "model_a")
    public String modelA;
    @Column(name = "version_a")
    public String versionA;

    @Column(name = "response_b")
    public String responseB;
    @Column(name = "model_b")
    public String modelB;
    @Column(name = "version_b")
    public String versionB;

    public String source;

    @Column(name = "created_at", insertable = false, updatable = false)
    public OffsetDateTime createdAt;

    public List<ChatMessage> promptMessages() {
        try {
            return JSON.readValue(prompt, new TypeReference<>() {
            });
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The response text a verdict points at. */
    public String response(Choice side) {
        return switch (side) {
            case A -> responseA;
            case B -> responseB;
            default -> throw new IllegalArgumentException(side + " names no single response");
        };
    }
}
