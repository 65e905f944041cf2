package org.prefloop.train;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.prefloop.model.TinyModelRecipe;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The pre-flight report on a run too big for the DJL worker's device: it proposes sharding it with the TRL executor. */
class PreflightScaleTest {
    static final Path TASK = Path.of("preference-data/synthetic").toAbsolutePath();
    static final Path MODEL = Path.of("target/trl-test-model").toAbsolutePath();

    @BeforeAll
    static void model() {
        if (!Files.exists(MODEL.resolve("config.json"))) TinyModelRecipe.read(TASK.resolve("tiny-model.json")).write(MODEL);
    }

    private static String spec(String extra) {
        return """
                model_name_or_path: %s
                %s
                sft: {dataset: "%s/sft.jsonl", use_peft: false, per_device_train_batch_size: 8, learning_rate: 2.0e-5, max_length: 64}
                """.formatted(MODEL, extra, TASK);
    }

    @Test
    void aRunThatDoesNotFitTheDjlWorkerIsToldHowManyGpusTheTrlExecutorWouldShardItOver() {
        PreflightReport roomy = Preflight.check(RunSpec.parse(spec("")), Path.of("."), 1L << 40);
        assertFalse(roomy.has("sft.memory"), roomy.render());

        MemoryEstimate m = estimate(RunSpec.parse(spec("")));
        assertTrue(String.valueOf(roomy.facts().get("sft memory")).startsWith(MemoryEstimate.gib(m.total()) + " total"), roomy.render());
        // room for the activations and a quarter of the weights, gradients and optimizer state: four shards fit, two do not
        long perDevice = m.activations() + (m.weights() + m.gradients() + m.optimizer()) / 4 + 64;
        PreflightReport tight = Preflight.check(RunSpec.parse(spec("")), Path.of("."), perDevice);
        String text = tight.render();
        assertFalse(tight.ok(), text);
        assertTrue(text.contains("error   sft.memory: needs about"), text);
        assertTrue(text.contains("or shard it over 4 GPUs with the TRL executor: executor: trl (one machine) or kubeflow (a TrainJob), "
                + "accelerate: {config: fsdp, num_processes: 4}"), text);

        // the proposal taken: sized per process, not checked against this machine (the TrainJob's GPUs hold it)
        PreflightReport sharded = Preflight.check(RunSpec.parse(spec("executor: kubeflow\naccelerate: {config: fsdp, num_processes: 4}")), Path.of("."), perDevice);
        assertTrue(sharded.ok(), sharded.render());
        String perProcess = String.valueOf(sharded.facts().get("sft memory per process"));
        assertTrue(perProcess.startsWith(MemoryEstimate.gib(m.perProcess("fsdp", 4).total()) + " with accelerate fsdp over 4 process(es) on 1 machine(s)"), perProcess);
        assertTrue(m.perProcess("fsdp", 4).total() <= perDevice);
        assertTrue(m.perProcess("fsdp", 2).total() > perDevice);

        PreflightReport hopeless = Preflight.check(RunSpec.parse(spec("")), Path.of("."), m.activations() / 2);
        assertTrue(hopeless.render().contains("its activations alone exceed that"), hopeless.render());
    }

    @Test
    void shardingDividesWhatEachSetUpShards() {
        MemoryEstimate m = new MemoryEstimate(800, 400, 1600, 100);
        assertEquals(m, m.perProcess("ddp", 8));
        assertEquals(new MemoryEstimate(800, 50, 200, 100), m.perProcess("deepspeed_zero2", 8));
        assertEquals(new MemoryEstimate(100, 50, 200, 100), m.perProcess("deepspeed_zero3", 8));
        assertEquals(new MemoryEstimate(100, 50, 200, 100), m.perProcess("fsdp", 8));
    }

    /** The full fine-tuning estimate the report makes for the spec's SFT stage. */
    private static MemoryEstimate estimate(RunSpec spec) {
        try (PreparedRun run = new PreparedRun(spec, Path.of("."))) {
            var train = run.sft.train();
            int maxLen = 0;
            for (Object e : train.examples()) if (e instanceof SequenceLogProbs.Sequence s) maxLen = Math.max(maxLen, s.length());
            maxLen = Math.min(spec.sft().training().maxLength(), maxLen);
            return MemoryEstimate.of(run.config, MemoryEstimate.parameters(run.config), spec.sft().training().perDeviceTrainBatchSize(), maxLen);
        }
    }
}
