package org.prefloop.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.prefloop.model.OffHeap;
import org.prefloop.model.Safetensors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * A stage's resumable state every {@code save_steps}: the trained weights, AdamW's moments, and
 * where the run stood (step, epoch, batch within the epoch, early-stopping bookkeeping). The data
 * order and the dropout masks derive from the seed and the step, so nothing random needs saving
 * beyond that. A checkpoint is written to a temporary directory and renamed into place, so a
 * kill mid-write leaves the previous one intact; only the latest is kept.
 */
public final class Checkpoint {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String WEIGHTS = "trainable.safetensors";
    private static final String OPTIMIZER = "optimizer.safetensors";
    private static final String STATE = "state.json";

    private Checkpoint() {
    }

    /** Where a stage stood when its checkpoint was written. */
    public record State(String stage, int step, int epoch, int batch, double bestEvalLoss, int evalsWithoutImprovement) {
    }

    public static void save(Path dir, State state, Trainable trainable, AdamW optimizer) {
        try {
            Files.createDirectories(dir);
            Path tmp = Files.createTempDirectory(dir, ".writing-");
            Safetensors.write(tmp.resolve(WEIGHTS), trainable.parameters(), Map.of("format", "pt"));
            Safetensors.write(tmp.resolve(OPTIMIZER), optimizer.state(), Map.of("step", String.valueOf(optimizer.step())));
            JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.resolve(STATE).toFile(), state);
            Path target = dir.resolve(String.format("%s-step-%06d", state.stage(), state.step()));
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            try (Stream<Path> old = Files.list(dir)) {
                old.filter(p -> p.getFileName().toString().startsWith(state.stage() + "-step-") && !p.equals(target)).forEach(Checkpoint::delete);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write a checkpoint into " + dir, e);
        }
    }

    /** The latest complete checkpoint of {@code stage} under {@code dir}, if any. */
    public static Optional<Path> latest(Path dir, String stage) {
        if (!Files.isDirectory(dir)) return Optional.empty();
        try (Stream<Path> all = Files.list(dir)) {
            return all.filter(p -> p.getFileName().toString().startsWith(stage + "-step-") && Files.exists(p.resolve(STATE)))
                    .max(Comparator.comparing(p -> p.getFileName().toString()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Loads the weights and optimizer state of {@code checkpoint} into {@code trainable} and {@code optimizer}; returns where it stood. */
    public static State restore(Path checkpoint, Trainable trainable, AdamW optimizer) {
        try (OffHeap memory = OffHeap.open()) { // the files' pages leave the resident set when restored
            State state = JSON.readValue(checkpoint.resolve(STATE).toFile(), State.class);
            Map<String, Safetensors.Tensor> weights = Safetensors.read(checkpoint.resolve(WEIGHTS), memory);
            boolean grad = ai.djl.pytorch.jni.JniUtils.isGradMode();
            ai.djl.pytorch.jni.JniUtils.setGradMode(false);
            for (Map.Entry<String, NDArray> p : trainable.parameters().entrySet()) {
                Safetensors.Tensor t = weights.get(p.getKey());
                if (t == null) throw new IllegalArgumentException(checkpoint + " has no tensor " + p.getKey());
                float[] values = t.toFloatArray();
                if (values.length != p.getValue().getShape().size()) throw new IllegalArgumentException(checkpoint + ": " + p.getKey() + " has the wrong size");
                p.getValue().set(values);
            }
            ai.djl.pytorch.jni.JniUtils.setGradMode(grad);
            long step = Long.parseLong(Safetensors.metadata(checkpoint.resolve(OPTIMIZER)).getOrDefault("step", "0"));
            try (NDManager scratch = NDManager.newBaseManager()) {
                Map<String, NDArray> moments = new HashMap<>();
                Safetensors.read(checkpoint.resolve(OPTIMIZER), memory).forEach((k, t) -> moments.put(k, t.toNDArray(scratch)));
                optimizer.restore(trainable.parameters(), moments, step);
            }
            return state;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the checkpoint " + checkpoint, e);
        }
    }

    private static void delete(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
