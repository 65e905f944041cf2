package org.prefloop.train;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The run spec's shape: TRL's keys, each stage refusing the other's, immutable values, resolution into a new spec. */
class RunSpecTest {
    static final Path REPO = Path.of("").toAbsolutePath();

    static IllegalArgumentException refused(String yaml) {
        return assertThrows(IllegalArgumentException.class, () -> RunSpec.parse(yaml));
    }

    @Test
    void eachStageRefusesTheOtherStagesKeysNamingThem() {
        IllegalArgumentException beta = refused("model_name_or_path: m\nsft: {dataset: d, beta: 1}\n");
        assertTrue(beta.getMessage().startsWith("sft.beta is a setting of the dpo stage (TRL's DPOConfig)"), beta.getMessage());
        IllegalArgumentException packing = refused("model_name_or_path: m\ndpo: {dataset: d, packing: true, rpo_alpha: 1}\n");
        assertTrue(packing.getMessage().contains("dpo.packing is a setting of the sft stage"), packing.getMessage());
        for (String dpoOnly : List.of("loss_type: sft", "max_prompt_length: 8", "stop_on_displacement: true", "rpo_alpha: 0.5")) {
            assertTrue(refused("model_name_or_path: m\nsft: {dataset: d, " + dpoOnly + "}\n").getMessage()
                    .startsWith("sft." + dpoOnly.substring(0, dpoOnly.indexOf(':'))), dpoOnly);
        }
        assertTrue(refused("model_name_or_path: m\ndpo: {dataset: d, replay_dataset: g, replay_ratio: 0.1}\n").getMessage()
                .contains("dpo.replay_dataset is a setting of the sft stage"));
        // the shared arguments go to both stages; a typo is still an unknown setting, listed before misplaced ones
        IllegalArgumentException typo = refused("model_name_or_path: m\nsft: {dataset: d, learnig_rate: 1, beta: 2}\n");
        assertEquals("unknown setting sft.learnig_rate in the run spec", typo.getMessage());
        assertTrue(refused("model_name_or_path: m\nsft: {dataset: d, training: {r: 4}}\n").getMessage().contains("sft.training"));
        assertTrue(refused("model_name_or_path: m\ntrl_only: {bf16: true}\nsft: {dataset: d}\n").getMessage().contains("trl_only"));
    }

    @Test
    void aValueOfTheWrongTypeIsRefusedNamingItsKey() {
        IllegalArgumentException e = refused("model_name_or_path: m\nsft: {dataset: d, learning_rate: fast}\n");
        assertTrue(e.getMessage().startsWith("the run spec is not valid: sft.learning_rate: "), e.getMessage());
        IllegalArgumentException loss = refused("model_name_or_path: m\ndpo: {dataset: d, loss_weights: heavy}\n");
        assertTrue(loss.getMessage().contains("dpo.loss_weights"), loss.getMessage());
        assertTrue(refused("model_name_or_path: m\nsft: [1, 2]\n").getMessage().contains("sft must be a mapping"));
        assertTrue(refused("- a\n- b\n").getMessage().contains("must be a mapping"));
        assertEquals("the run spec is empty", refused("").getMessage());
        assertEquals("sft.lr_scheduler_type must be cosine, linear, constant or constant_with_warmup; got 'steep'",
                refused("model_name_or_path: m\nsft: {dataset: d, lr_scheduler_type: steep}\n").getMessage());
    }

    @Test
    void absentKeysTakeTrlsDefaultsAndSnakeCaseKeysBindToTheirComponents() {
        RunSpec spec = RunSpec.parse("model_name_or_path: m\nsft: {dataset: d}\ndpo: {dataset: p, per_device_train_batch_size: 2, adam_beta2: 0.95, loss_type: ipo, rpo_alpha: 0.5}\n");
        assertEquals("run", spec.name());
        assertEquals(42L, spec.seed());
        assertEquals("runs/run", spec.outputDir());
        TrainingArguments sft = spec.sft().training();
        assertEquals(2e-4, sft.learningRate());
        assertEquals(8, sft.perDeviceTrainBatchSize());
        assertEquals(1024, sft.maxLength());
        assertEquals(-1, sft.maxSteps());
        assertEquals("cosine", sft.lrSchedulerType());
        assertTrue(sft.usePeft());
        assertEquals(TrainingArguments.ALL_LINEAR, sft.targetModules());
        assertFalse(spec.sft().packing());
        assertEquals(2, spec.dpo().training().perDeviceTrainBatchSize());
        assertEquals(0.95, spec.dpo().training().adamBeta2());
        assertEquals(0.1, spec.dpo().beta());
        assertNull(spec.dpo().maxPromptLength());
        // one name is a list of one; rpo_alpha (the older spelling) still adds the sft term with its weight
        assertEquals(List.of("ipo"), spec.dpo().lossType());
        assertEquals(List.of("ipo", "sft"), spec.dpo().objective().names());
        assertEquals(List.of(1.0, 0.5), spec.dpo().objective().weights());
    }

    @Test
    void theSpecWrittenOutIsFlatLikeTrlsConfigsAndReadsBackEqual() {
        RunSpec spec = RunSpec.parse("""
                name: r1
                model_name_or_path: m
                seed: 7
                sft: {dataset: d, packing: true, replay_dataset: g, replay_ratio: 0.25, gradient_accumulation_steps: 3, bf16: true}
                dpo: {dataset: p, beta: 0.3, loss_type: [sigmoid, sft], loss_weights: [1, 0.2], use_peft: false}
                report_to: none
                """);
        var tree = spec.toTree();
        assertEquals(3, tree.get("sft").get("gradient_accumulation_steps").asInt());
        assertTrue(tree.get("sft").get("packing").asBoolean());
        assertEquals(0.3, tree.get("dpo").get("beta").asDouble());
        assertFalse(tree.get("dpo").get("use_peft").asBoolean());
        assertFalse(tree.get("sft").has("training"), "stages are flat");
        assertFalse(tree.get("sft").has("bf16"), "TRL-only settings are kept aside");
        assertEquals(List.of("report_to", "sft.bf16"), spec.ignoredSettings());
        assertTrue(spec.trlOnly("sft").get("bf16").asBoolean());
        RunSpec again = RunSpec.parse(spec.toJson());
        assertEquals(spec.sft(), again.sft());
        assertEquals(spec.dpo(), again.dpo());
        assertEquals(spec.name(), again.name());
        assertEquals(spec.seed(), again.seed());
    }

    @Test
    void aSpecCannotBeChangedAndResolvingPathsMakesANewOne() {
        RunSpec spec = RunSpec.parse("""
                model_name_or_path: version:3
                output_dir: out
                forgetting_dataset: general.jsonl
                sft: {dataset: "dataset:1", eval_dataset: heldout.jsonl, replay_dataset: g.jsonl, replay_ratio: 0.1, target_modules: [q_proj]}
                dpo: {dataset: "dataset:2", loss_type: [sigmoid]}
                """);
        assertThrows(UnsupportedOperationException.class, () -> spec.sft().training().targetModules().add("v_proj"));
        assertThrows(UnsupportedOperationException.class, () -> spec.dpo().lossType().add("sft"));
        assertThrows(UnsupportedOperationException.class, () -> spec.trlOnly().put("bf16", null));
        List<String> seen = new ArrayList<>();
        RunSpec resolved = spec.withPaths((key, ref) -> {
            seen.add(key);
            return key.equals("sft.eval_dataset") ? null : "/abs/" + ref;
        });
        assertEquals(List.of("model_name_or_path", "sft.dataset", "sft.eval_dataset", "sft.replay_dataset", "dpo.dataset",
                "forgetting_dataset", "output_dir"), seen, "every file key that is set, once, in order");
        assertNotSame(spec, resolved);
        assertEquals("/abs/version:3", resolved.modelNameOrPath());
        assertEquals("/abs/dataset:1", resolved.sft().training().dataset());
        assertNull(resolved.sft().training().evalDataset());
        assertEquals("/abs/g.jsonl", resolved.sft().replayDataset());
        assertEquals("/abs/dataset:2", resolved.dpo().training().dataset());
        assertEquals("/abs/general.jsonl", resolved.forgettingDataset());
        assertEquals("/abs/out", resolved.outputDir());
        assertEquals(List.of("q_proj"), resolved.sft().training().targetModules(), "the other settings travel unchanged");
        assertEquals(0.1, resolved.sft().replayRatio());
        // the original is as it was
        assertEquals("version:3", spec.modelNameOrPath());
        assertEquals("dataset:1", spec.sft().training().dataset());
        assertEquals("heldout.jsonl", spec.sft().training().evalDataset());
        assertEquals("out", spec.outputDir());
        assertThrows(IllegalArgumentException.class, () -> spec.withPath("beta", "x"));
    }

    @Test
    void theSpecsTheReadmeAndTheRepositoryShowAreValid() throws IOException {
        String readme = Files.readString(REPO.resolve("README.md"));
        int start = readme.indexOf("```yaml\n", readme.indexOf("## Training")) + "```yaml\n".length();
        RunSpec training = RunSpec.parse(readme.substring(start, readme.indexOf("```", start)));
        assertEquals(List.of("sigmoid", "sft"), training.dpo().lossType());
        assertEquals(0.1, training.sft().replayRatio());
        assertEquals(512, training.dpo().maxPromptLength());
        int quick = readme.indexOf("<<'YAML'\n") + "<<'YAML'\n".length();
        String submitted = readme.substring(quick, readme.indexOf("YAML\n", quick));
        assertEquals(0.5, RunSpec.parse("model_name_or_path: version:1\n" + submitted).dpo().beta(), "the quick start's run, with the promoted version the API fills in");
        for (String f : List.of("align.yaml", "demo.yaml", "pretrain.yaml")) {
            RunSpec.read(REPO.resolve("preference-data/synthetic").resolve(f));
        }
        RunSpec json = RunSpec.parse("{\"model_name_or_path\": \"m\", \"dpo\": {\"dataset\": \"p\", \"loss_type\": \"simpo\", \"simpo_gamma\": 1.5}}");
        assertEquals(1.5, json.dpo().simpoGamma());
    }
}
