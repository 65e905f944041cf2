package org.prefloop.train.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CLI end to end in-process: a random model, a short run with its progress lines, and one-line errors. */
class TrainCliTest {
    final ByteArrayOutputStream out = new ByteArrayOutputStream();
    final ByteArrayOutputStream err = new ByteArrayOutputStream();

    int run(String... args) {
        out.reset();
        err.reset();
        return TrainCli.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @Test
    void initPreflightTrainAndClearErrors(@TempDir Path tmp) throws Exception {
        Path model = tmp.resolve("init");
        assertEquals(0, run("init-model", "--recipe", "preference-data/synthetic/tiny-model.json", "--out", model.toString()), err.toString());
        assertTrue(Files.exists(model.resolve("config.json")));

        Path data = Path.of("preference-data/synthetic").toAbsolutePath();
        Path spec = tmp.resolve("run.yaml");
        Files.writeString(spec, """
                model_name_or_path: init
                output_dir: out
                sft: {dataset: %s/sft.jsonl, max_steps: 3, per_device_train_batch_size: 4, learning_rate: 2.0e-4, max_length: 64}
                dpo: {dataset: %s/dpo.jsonl, max_steps: 2, per_device_train_batch_size: 4, learning_rate: 2.0e-4, max_length: 64}
                forgetting_dataset: %s/general.jsonl
                """.formatted(data, data, data));
        assertEquals(0, run("preflight", "--spec", spec.toString()), err.toString());
        assertTrue(out.toString().contains("sft memory"), out.toString());

        assertEquals(0, run("train", "--spec", spec.toString()), err.toString());
        assertTrue(err.toString().contains("sft step 3/3  loss "), err.toString());
        assertTrue(err.toString().matches("(?s).*dpo step 2/2  loss [0-9.]+  reward acc [0-9.]+  margin .* tok/s  ETA 0:00.*"), err.toString());
        assertTrue(out.toString().contains("aligned model: " + tmp.resolve("out/model")), out.toString());
        assertTrue(out.toString().contains("forgetting (loss on the general set)"), out.toString());
        assertTrue(Files.exists(tmp.resolve("out/model/model.safetensors")));

        assertEquals(2, run("train"));
        assertTrue(err.toString().startsWith("prefloop: --spec is required"), err.toString());
        assertEquals(2, run("train", "--spec", tmp.resolve("none.yaml").toString()));
        assertEquals("prefloop: no run spec at " + tmp.resolve("none.yaml") + "\n", err.toString());
        Files.writeString(spec, Files.readString(spec).replace("learning_rate", "learnig_rate"));
        assertEquals(2, run("preflight", "--spec", spec.toString()));
        assertTrue(err.toString().startsWith("prefloop: unknown setting sft.learnig_rate, dpo.learnig_rate") || err.toString().contains("learnig_rate"), err.toString());
        assertEquals(1, err.toString().lines().count(), "one line: " + err);
        Files.writeString(spec, Files.readString(spec).replace("learnig_rate", "learning_rate").replace("sft: {", "sft: {beta: 1, "));
        assertEquals(2, run("train", "--spec", spec.toString()));
        assertTrue(err.toString().startsWith("prefloop: sft.beta is a setting of the dpo stage"), err.toString());
        assertEquals(1, err.toString().lines().count(), "one line: " + err);
    }
}
