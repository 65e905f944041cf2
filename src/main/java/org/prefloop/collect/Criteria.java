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

    public List<String> names() {
        return configured.orElse(List.of()).stream().map(String::trim).filter(s -> !s.isEmpty()).distinct().toList();
    }
}
