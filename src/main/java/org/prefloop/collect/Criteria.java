package org.prefloop.collect;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.prefloop.platform.Settings;

import java.util.List;

/**
 * The criteria a project asks annotators to judge beside the overall verdict
 * ({@code prefloop.annotation.criteria}, for example helpfulness,correctness,safety; none by default).
 */
@ApplicationScoped
public class Criteria {
    @Inject
    Settings settings;

    /** A criterion as the workspace shows it. */
    public record Shown(String name, String label) {
    }

    public List<Shown> shown() {
        return names().stream().map(n -> new Shown(n, Character.toUpperCase(n.charAt(0)) + n.substring(1).replace('_', ' '))).toList();
    }

    public List<String> names() {
        return settings.annotation().criteria().orElse(List.of()).stream().map(String::trim).filter(s -> !s.isEmpty()).distinct().toList();
    }
}
