package org.prefloop.train;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the checks before a run found: each finding is an error (the run will not start) or a
 * warning (the run starts; the team should know), plus the facts they were based on.
 */
public final class PreflightReport {
    public enum Level { ERROR, WARNING }

    public record Finding(Level level, String check, String message) {
    }

    private final List<Finding> findings = new ArrayList<>();
    private final Map<String, Object> facts = new LinkedHashMap<>();

    /** A report that says the checks happen later, on the worker (which fails the run if they do). */
    public static PreflightReport deferred(String why) {
        PreflightReport r = new PreflightReport();
        r.warn("deferred", why);
        return r;
    }

    void error(String check, String message) {
        findings.add(new Finding(Level.ERROR, check, message));
    }

    void warn(String check, String message) {
        findings.add(new Finding(Level.WARNING, check, message));
    }

    void fact(String name, Object value) {
        facts.put(name, value);
    }

    public List<Finding> findings() {
        return findings;
    }

    public Map<String, Object> facts() {
        return facts;
    }

    public boolean ok() {
        return findings.stream().noneMatch(f -> f.level() == Level.ERROR);
    }

    public boolean has(String check) {
        return findings.stream().anyMatch(f -> f.check().equals(check));
    }

    /** One finding per line, errors first, then the facts. */
    public String render() {
        StringBuilder sb = new StringBuilder();
        findings.stream().sorted((a, b) -> a.level().compareTo(b.level()))
                .forEach(f -> sb.append(f.level() == Level.ERROR ? "error   " : "warning ").append(f.check()).append(": ").append(f.message()).append('\n'));
        if (findings.isEmpty()) sb.append("ok: no problems found\n");
        facts.forEach((k, v) -> sb.append("  ").append(k).append(": ").append(v).append('\n'));
        return sb.toString();
    }

    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ok", ok());
        m.put("findings", findings.stream().map(f -> Map.of("level", f.level().name().toLowerCase(), "check", f.check(), "message", f.message())).toList());
        m.put("facts", facts);
        return m;
    }
}
