package org.prefloop.runs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.prefloop.model.TinyModelRecipe;
import org.prefloop.train.RunListener;
import org.prefloop.train.RunSpec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The spec's accelerate section: its config files are accepted by accelerate's own launcher
 * (DDP, FSDP, DeepSpeed ZeRO-2/3; deepspeed itself is not installed here, so those are checked
 * by accelerate's parser, not run), and a DDP run with two processes trains for real on CPU
 * through {@code accelerate launch}, reporting each step once.
 */
class AccelerateLaunchTest {
    static final Path TASK = TrlExecutorTest.TASK;
    static final Path MODEL = TrlExecutorTest.MODEL;

    @BeforeAll
    static void model() {
        TrlExecutorTest.assumeTrl();
        if (!Files.exists(MODEL.resolve("config.json"))) TinyModelRecipe.read(TASK.resolve("tiny-model.json")).write(MODEL);
    }

    /** Loads the file with accelerate's config loader and launch-argument validation; prints what the launcher would use. */
    private static final String CHECK = """
            import json, sys
            from accelerate.commands.config.config_args import load_config_from_file
            from accelerate.commands.launch import launch_command_parser, _validate_launch_command
            config = load_config_from_file(sys.argv[1])
            parser = launch_command_parser()
            options = {o.lstrip("-").replace("-", "_") for o in parser._option_string_actions}
            section = config.fsdp_config or config.deepspeed_config or {}
            unknown = [k for k in section if k not in options]
            args, _, _ = _validate_launch_command(parser.parse_args(["--config_file", sys.argv[1], "x.py"]))
            print(json.dumps({"distributed_type": str(config.distributed_type), "num_processes": args.num_processes,
                              "num_machines": args.num_machines, "use_fsdp": bool(args.use_fsdp),
                              "use_deepspeed": bool(args.use_deepspeed), "zero_stage": getattr(args, "zero_stage", None),
                              "fsdp_state_dict_type": getattr(args, "fsdp_state_dict_type", None), "unknown": unknown}))
            """;

    @ParameterizedTest
    @ValueSource(strings = {"ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3"})
    void everyConfigIsOneAccelerateLaunches(String config, @TempDir Path dir) throws Exception {
        RunSpec spec = RunSpec.parse("""
                model_name_or_path: m
                executor: kubeflow
                accelerate: {config: %s, num_machines: 2, num_processes: 16, mixed_precision: bf16}
                dpo: {dataset: d.jsonl}
                """.formatted(config));
        Path file = dir.resolve("accelerate.yaml");
        Files.writeString(file, spec.accelerate().configYaml());
        Process p = new ProcessBuilder("python3", "-c", CHECK, file.toString()).redirectErrorStream(false).start();
        String out = new String(p.getInputStream().readAllBytes()).strip();
        String err = new String(p.getErrorStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, "accelerate rejected the config:\n" + err);
        JsonNode r = new ObjectMapper().readTree(out.lines().reduce((a, b) -> b).orElseThrow());
        assertEquals(16, r.get("num_processes").asInt());
        assertEquals(2, r.get("num_machines").asInt());
        assertEquals(List.of(), new ObjectMapper().convertValue(r.get("unknown"), List.class), "keys accelerate does not know");
        switch (config) {
            case "ddp" -> assertEquals("DistributedType.MULTI_GPU", r.get("distributed_type").asText());
            case "fsdp" -> {
                assertTrue(r.get("use_fsdp").asBoolean());
                assertEquals("FULL_STATE_DICT", r.get("fsdp_state_dict_type").asText(), "the adapter is saved whole");
            }
            default -> {
                assertTrue(r.get("use_deepspeed").asBoolean());
                assertEquals(config.endsWith("3") ? 3 : 2, r.get("zero_stage").asInt());
            }
        }
    }

    @Test
    void badAccelerateSettingsAreRefusedNamingTheKey() {
        String base = "model_name_or_path: m\ndpo: {dataset: d.jsonl}\n";
        assertEquals("accelerate.config must be one of ddp, fsdp, deepspeed_zero2, deepspeed_zero3, not 'zero3'",
                assertThrows(IllegalArgumentException.class, () -> RunSpec.parse(base + "accelerate: {config: zero3}")).getMessage());
        assertEquals("accelerate.num_processes must be a multiple of num_machines (the same number of processes on every machine)",
                assertThrows(IllegalArgumentException.class, () -> RunSpec.parse(base + "accelerate: {num_machines: 2, num_processes: 3}")).getMessage());
        assertEquals("unknown setting accelerate.gpus in the run spec",
                assertThrows(IllegalArgumentException.class, () -> RunSpec.parse(base + "accelerate: {gpus: 8}")).getMessage());
        assertEquals("accelerate: the djl executor trains in one process; use executor: trl or kubeflow",
                assertThrows(IllegalArgumentException.class, () -> RunSpec.parse(base + "executor: djl\naccelerate: {num_processes: 2}")).getMessage());
    }

    @Test
    void aDdpRunWithTwoProcessesTrainsOnCpuAndReportsEachStepOnce(@TempDir Path dir) throws IOException {
        RunSpec spec = RunSpec.parse("""
                name: ddp
                executor: trl
                model_name_or_path: %s
                output_dir: out
                seed: 5
                accelerate: {config: ddp, num_processes: 2, main_process_port: %d}
                sft: {dataset: "%s/sft.jsonl", max_steps: 2, per_device_train_batch_size: 2, learning_rate: 1.0e-3, max_length: 64, r: 4, lora_alpha: 8}
                dpo: {dataset: "%s/dpo.jsonl", max_steps: 2, per_device_train_batch_size: 2, learning_rate: 1.0e-3, max_length: 64, r: 4, lora_alpha: 8}
                """.formatted(MODEL, 29_600 + (int) (ProcessHandle.current().pid() % 300), TASK, TASK));
        List<String> steps = new ArrayList<>();
        List<Double> dpoLosses = new ArrayList<>();
        RunListener listener = new RunListener() {
            @Override
            public void step(String stage, int step, int totalSteps, Map<String, Double> metrics) {
                steps.add(stage + "/" + step);
                if (stage.equals("dpo")) dpoLosses.add(metrics.get("loss"));
            }
        };
        Map<String, Object> summary = new TrlExecutor("python3").run(spec, dir.resolve("run"), listener, () -> false);
        assertEquals(2, ((Number) summary.get("processes")).intValue(), "two processes trained");
        assertEquals(List.of("sft/1", "sft/2", "dpo/1", "dpo/2"), steps, "only the first process reports");
        assertEquals(Math.log(2), dpoLosses.get(0), 1e-5, "DPO starts at ln 2: the policy is its reference");
        @SuppressWarnings("unchecked")
        Map<String, Object> sft = (Map<String, Object>) summary.get("sft");
        // two processes of two examples each: an optimizer step covers four of the 1,200 examples
        assertEquals(2 * 4 / 1200.0, ((Number) sft.get("epochs")).doubleValue(), 1e-9);
        Path out = dir.resolve("run/out");
        assertTrue(Files.exists(out.resolve("model/model.safetensors")));
        assertTrue(Files.exists(out.resolve("dpo/adapter/adapter_model.safetensors")));
        assertEquals(2, Files.readAllLines(out.resolve("dpo/metrics.jsonl")).size(), "one metrics line per step, not one per process");
        assertTrue(Files.readString(dir.resolve("run/accelerate.yaml")).contains("distributed_type: MULTI_GPU"));
    }
}
