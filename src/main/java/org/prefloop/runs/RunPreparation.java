package org.prefloop.runs;

import org.prefloop.registry.ModelVersion;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.prefloop.dataset.Dataset;
import org.prefloop.dataset.DatasetExporter;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.platform.FileRoots;
import org.prefloop.train.RunSpec;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a stored run spec into one the trainer can read from disk: {@code version:ID} becomes
 * that version's weights (a version with an adapter is merged into its base once, into the
 * run's directory), {@code dataset:ID} becomes the frozen dataset exported in TRL's format, and
 * the output goes under the run's own directory, so a restarted job finds its checkpoints.
 */
@ApplicationScoped
public class RunPreparation {
    static final String VERSION = "version:";
    static final String DATASET = "dataset:";

    @Inject
    DatasetExporter exporter;
    @Inject
    ObjectMapper json;
    @Inject
    FileRoots roots;

    /**
     * The spec ready to train, the version it starts from (if any), the content hashes of the datasets it reads,
     * and each path it resolved with what the client wrote (so messages can quote the latter, not server paths).
     */
    public record Prepared(RunSpec spec, Path dir, Long parentVersionId, Map<String, String> datasetHashes, Map<String, String> given) {
        /** The message with every resolved path replaced by the name the client gave. */
        public String redact(String message) {
            if (message == null) return null;
            String out = message;
            for (var e : given.entrySet()) out = out.replace(e.getKey(), e.getValue());
            return out.replace(dir.toAbsolutePath().toString(), "<run>");
        }
    }

    public Prepared prepare(RunSpec spec, Path runDir) {
        return prepare(spec, runDir, false);
    }

    /**
     * A new spec with every reference resolved (the given one is left as it was).
     * With {@code checkOnly}, a version with an adapter stands for its base (same config and tokenizer): nothing is merged.
     */
    public Prepared prepare(RunSpec spec, Path runDir, boolean checkOnly) {
        try {
            Files.createDirectories(runDir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + runDir, e);
        }
        Long[] parent = {null};
        Map<String, String> given = new LinkedHashMap<>();
        Map<String, String> hashes = new LinkedHashMap<>();
        RunSpec resolved = spec.withPaths((key, ref) -> switch (key) {
            case "output_dir" -> runDir.resolve("out").toAbsolutePath().toString();
            case "model_name_or_path" -> {
                if (!ref.startsWith(VERSION)) yield file(key, ref, given);
                ModelVersion v = QuarkusTransaction.requiringNew().call(() -> ModelVersion.<ModelVersion>findById(id(ref, VERSION)));
                if (v == null) throw new IllegalArgumentException("model_name_or_path names " + ref + ", which is not registered");
                parent[0] = v.id;
                yield (checkOnly ? Path.of(v.baseModel) : weightsOf(v, runDir)).toString();
            }
            default -> dataset(key, ref, runDir, hashes, given);
        });
        return new Prepared(resolved, runDir, parent[0], hashes, given);
    }

    /** A path the client named, confined to the file roots (a 422 naming the field otherwise). */
    private String file(String field, String ref, Map<String, String> given) {
        String resolved = roots.resolve(field, ref).toString();
        given.put(resolved, ref);
        return resolved;
    }

    /** A Hugging Face directory with the version's weights: its base, or its base with its adapter merged (written once). */
    static Path weightsOf(ModelVersion v, Path runDir) {
        if (v.adapterPath == null) return Path.of(v.baseModel);
        Path merged = runDir.resolve("parent-" + v.id);
        if (Files.exists(merged.resolve("model.safetensors"))) return merged;
        Path tmp = runDir.resolve("parent-" + v.id + ".writing");
        try (LlamaModel model = LlamaModel.load(Path.of(v.baseModel)); LoraAdapter adapter = LoraAdapter.load(Path.of(v.adapterPath), model)) {
            adapter.mergeInto(model);
            model.save(tmp);
            for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")) {
                Path src = Path.of(v.baseModel).resolve(f);
                if (Files.exists(src)) Files.copy(src, tmp.resolve(f), StandardCopyOption.REPLACE_EXISTING);
            }
            Files.move(tmp, merged, StandardCopyOption.ATOMIC_MOVE);
            return merged;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the merged parent model into " + merged, e);
        }
    }

    private String dataset(String field, String ref, Path runDir, Map<String, String> hashes, Map<String, String> given) {
        if (ref == null) return null;
        if (!ref.startsWith(DATASET)) return file(field, ref, given);
        long id = id(ref, DATASET);
        Dataset d = QuarkusTransaction.requiringNew().call(() -> Dataset.<Dataset>findById(id));
        if (d == null) throw new IllegalArgumentException(ref + " does not exist");
        Path file = runDir.resolve("data").resolve("dataset-" + id + "-" + d.contentHash.substring(0, 12) + ".jsonl");
        if (!Files.exists(file)) {
            try {
                Files.createDirectories(file.getParent());
                Path tmp = file.resolveSibling(file.getFileName() + ".writing");
                try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                    exporter.write(id, w);
                }
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot export " + ref, e);
            }
        }
        hashes.put(ref, d.contentHash);
        given.put(file.toAbsolutePath().toString(), ref);
        return file.toAbsolutePath().toString();
    }

    private static long id(String ref, String prefix) {
        try {
            return Long.parseLong(ref.substring(prefix.length()));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + ref + "' should be " + prefix + "<id>");
        }
    }
}
