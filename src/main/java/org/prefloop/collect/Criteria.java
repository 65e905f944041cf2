package org.prefloop.collect;

import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.config.inject.ConfigProperty;

import java.util.List;
import java.util.Optional;

/**
 * The criteria a project asks annotators to judge beside the overall verdict
 * ({@code prefloop.annotation.criteria}, for example helpfulness,correctness,safety; none by default).
 */
@ApplicationScoped
public class Criteria {
    @ConfigProperty(name = "prefloop.annotation.criteria")
    Optional<List<String>> configured;

    /** A criterion as the workspace shows it. */
    public record Shown(String name, String label) {
    }

    public List<Shown> shown() {
        return names().stream().map(n -> new Shown(n, Character.toUpperCase(n.charAt(0)) + n.substring(1).replace('_', ' '))).toList();
    }

    public List<String> names() {
        return configured.orElse(List.of()).stream().map(String::trim).filter(s -> !s.isEmpty()).distinct().toList();
    }
}
