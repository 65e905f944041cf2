package org.prefloop.runs;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.prefloop.train.RunCancelledException;
import org.prefloop.train.RunListener;
import org.prefloop.train.RunSpec;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;

/**
 * The {@code trl} executor: runs a prepared spec with TRL in a child {@code python3} process
 * ({@code src/main/python/prefloop_trl.py}, shipped in the jar and unpacked into the run's
 * directory), with the DJL executor's contract: the same output layout under output_dir, each
 * JSON progress line of the child passed to the {@link RunListener}, a stop request ends the
 * child and throws {@link RunCancelledException}, and a failure is an exception whose message is
 * the child's reason. Only a run whose {@code summary.json} and {@code model/} exist succeeded.
 */
public final class TrlExecutor {
    static final String SCRIPT = "prefloop_trl.py";
    private static final ObjectMapper JSON = JsonMapper.builder().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();

    private final String python;

    public TrlExecutor(String python) {
        this.python = python;
    }

    /** Runs the spec (relative paths resolve against {@code runDir}, as for the DJL executor) and returns its summary. */
    public Map<String, Object> run(RunSpec spec, Path dir, RunListener listener, BooleanSupplier stop) {
        try {
            RunFiles prepared = prepare(spec, dir);
            Path log = prepared.runDir().resolve("trl.log");
            Process child;
            try {
                child = new ProcessBuilder(command(prepared)).directory(prepared.runDir().toFile())
                        .redirectError(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
            } catch (IOException e) {
                throw new IllegalStateException("the TRL executor cannot start " + python + ": " + e.getMessage()
                        + " (set PREFLOOP_TRL_PYTHON to a Python with trl installed)");
            }
            Events events = new Events(listener);
            Thread reader = Thread.ofVirtual().name("trl-events").start(() -> events.read(child.getInputStream()));
            while (!child.waitFor(200, TimeUnit.MILLISECONDS)) {
                if (stop.getAsBoolean()) {
                    end(child);
                    reader.join(5000);
                    throw new RunCancelledException(events.stage.get(), events.step.get());
                }
            }
            reader.join(5000);
            if (child.exitValue() != 0) throw new IllegalStateException(reason(events, child.exitValue(), log));
            return summary(prepared.outputDir(), "the TRL process");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RunCancelledException("trl", 0);
        }
    }

    /** What a run through TRL needs in its directory: the resolved spec, this build's script and, with an accelerate section, its config file. */
    record RunFiles(Path runDir, Path spec, Path script, Path accelerateConfig, Path outputDir) {
    }

    static RunFiles prepare(RunSpec spec, Path dir) throws IOException {
        return prepare(spec, dir, spec.accelerate());
    }

    /** @param accelerate written as accelerate.yaml when not null (the kubeflow executor always launches through accelerate) */
    static RunFiles prepare(RunSpec spec, Path dir, org.prefloop.train.Accelerate accelerate) throws IOException {
        Path runDir = dir.toAbsolutePath().normalize(); // the child runs in it: every path it is given must be absolute
        Files.createDirectories(runDir);
        Path specFile = runDir.resolve("trl-spec.json");
        ObjectNode resolved = resolvedSpec(spec, runDir);
        JSON.writerWithDefaultPrettyPrinter().writeValue(specFile.toFile(), resolved);
        Path config = null;
        if (accelerate != null) {
            config = runDir.resolve("accelerate.yaml");
            Files.writeString(config, accelerate.configYaml());
        }
        return new RunFiles(runDir, specFile, unpackScript(runDir), config, Path.of(resolved.get("output_dir").asText()));
    }

    /**
     * {@code python3 prefloop_trl.py spec}, or with an accelerate section
     * {@code python3 -m accelerate.commands.launch --config_file accelerate.yaml prefloop_trl.py spec}
     * (the module, not the {@code accelerate} script, so that PREFLOOP_TRL_PYTHON picks the installation).
     */
    List<String> command(RunFiles f) {
        if (f.accelerateConfig() == null) return List.of(python, f.script().toString(), f.spec().toString());
        return List.of(python, "-m", "accelerate.commands.launch", "--config_file", f.accelerateConfig().toString(),
                f.script().toString(), f.spec().toString());
    }

    /** The summary of a finished run under {@code out}; only a run whose summary.json and model/ exist succeeded. */
    static Map<String, Object> summary(Path out, String who) throws IOException {
        Path summary = out.resolve("summary.json");
        if (!Files.exists(summary) || !Files.exists(out.resolve("model").resolve("model.safetensors"))) {
            throw new IllegalStateException(who + " ended without writing " + summary + " and model/");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> result = JSON.readValue(summary.toFile(), LinkedHashMap.class);
        return result;
    }

    /** The spec as the script reads it: every path absolute, stages flat as TRL's configs, with the TRL-only settings. */
    static ObjectNode resolvedSpec(RunSpec spec, Path runDir) {
        if (spec.kto() != null) throw new IllegalArgumentException("executor trl does not run a kto stage yet; use executor djl");
        ObjectNode json = spec.withPaths((key, path) -> runDir.resolve(path).toAbsolutePath().normalize().toString()).toTree();
        for (String stage : List.of("sft", "dpo")) {
            // TRL settings the DJL trainer accepts without effect (bf16, gradient_checkpointing, optim, ...): TRL applies them
            if (json.get(stage) instanceof ObjectNode s) spec.trlOnly(stage).forEach(s::set);
        }
        return json;
    }

    /** Copies the script out of the jar (or the class folder) into the run's directory, so the child runs this build's copy. */
    static Path unpackScript(Path runDir) throws IOException {
        Path target = runDir.resolve(SCRIPT);
        try (InputStream in = TrlExecutor.class.getResourceAsStream(SCRIPT)) {
            if (in == null) throw new IllegalStateException(SCRIPT + " is missing from the classpath (built without src/main/python?)");
            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
        }
        return target;
    }

    /** SIGTERM, then SIGKILL after ten seconds: the script writes model/ under another name until it is complete. */
    private static void end(Process child) throws InterruptedException {
        child.descendants().forEach(ProcessHandle::destroy);
        child.destroy();
        if (!child.waitFor(10, TimeUnit.SECONDS)) {
            child.descendants().forEach(ProcessHandle::destroyForcibly);
            child.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** The child's own reason if it gave one, else the last line it wrote to stderr, else its exit code. */
    private static String reason(Events events, int exit, Path log) throws IOException {
        if (events.failure.get() != null) return events.failure.get();
        List<String> lines = Files.exists(log) ? Files.readAllLines(log) : List.of();
        for (int i = lines.size() - 1; i >= 0; i--) {
            if (!lines.get(i).isBlank()) return "the TRL process exited with code " + exit + ": " + lines.get(i).strip();
        }
        return "the TRL process exited with code " + exit;
    }

    /** Turns the child's JSON lines into listener calls; other lines are ignored. */
    static final class Events {
        final RunListener listener;
        final AtomicReference<String> stage = new AtomicReference<>("trl");
        final AtomicInteger step = new AtomicInteger();
        final AtomicReference<String> failure = new AtomicReference<>();

        Events(RunListener listener) {
            this.listener = listener;
        }

        void read(InputStream stdout) {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(stdout, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    if (line.startsWith("{")) handle(line);
                }
            } catch (IOException e) {
                // the child was ended; its exit code tells the rest
            }
        }

        void handle(String line) {
            JsonNode e;
            try {
                e = JSON.readTree(line);
            } catch (IOException ex) {
                return;
            }
            String name = e.path("stage").asText(stage.get());
            switch (e.path("event").asText()) {
                case "stage" -> {
                    stage.set(name);
                    step.set(0);
                    listener.stageStarted(name, e.path("total_steps").asInt());
                }
                case "step" -> {
                    step.set(e.path("step").asInt());
                    listener.step(name, step.get(), e.path("total_steps").asInt(), metrics(e.path("metrics")));
                }
                case "eval" -> listener.evaluated(name, e.path("step").asInt(), metrics(e.path("metrics")));
                case "checkpoint" -> listener.checkpointed(name, e.path("step").asInt());
                case "message" -> listener.message(e.path("text").asText());
                case "failed" -> failure.set(e.path("reason").asText());
                default -> {
                }
            }
        }

        private static Map<String, Double> metrics(JsonNode m) {
            Map<String, Double> out = new LinkedHashMap<>();
            m.fields().forEachRemaining(f -> {
                if (f.getValue().isNumber()) out.put(f.getKey(), f.getValue().asDouble());
            });
            return out;
        }
    }
}
