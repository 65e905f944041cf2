package org.prefloop.train;

import com.fasterxml.jackson.annotation.JsonAnySetter;
import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A run spec's {@code accelerate} section: how the {@code trl} and {@code kubeflow} executors
 * spread a run over processes with {@code accelerate launch}. The keys are accelerate's own
 * ({@code num_processes} counts all processes of all machines, as in {@code accelerate config});
 * {@code config} names one of the distributed set-ups below, and {@link #configYaml()} writes the
 * accelerate config file for it. The DJL executor trains in one process and refuses this section.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public final class Accelerate {
    /** ddp: every process holds the whole model; fsdp / deepspeed_zero3 shard weights, gradients and optimizer state; zero2 shards the latter two. */
    public static final List<String> CONFIGS = List.of("ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3");
    static final List<String> MIXED_PRECISION = List.of("no", "fp16", "bf16");

    public String config = "ddp";
    /** All processes of all machines (one per GPU). */
    @JsonProperty("num_processes")
    public int numProcesses = 1;
    @JsonProperty("num_machines")
    public int numMachines = 1;
    @JsonProperty("mixed_precision")
    public String mixedPrecision = "no";
    @JsonProperty("main_process_port")
    public int mainProcessPort = 29500;
    @JsonIgnore
    public final Map<String, Object> unknown = new TreeMap<>();

    @JsonAnySetter
    void other(String key, Object value) {
        unknown.put(key, value);
    }

    void validate() {
        if (!unknown.isEmpty()) {
            List<String> bad = new ArrayList<>();
            unknown.keySet().forEach(k -> bad.add("accelerate." + k));
            throw new IllegalArgumentException("unknown setting " + String.join(", ", bad) + " in the run spec");
        }
        check(config != null && CONFIGS.contains(config), "accelerate.config must be one of " + String.join(", ", CONFIGS) + ", not '" + config + "'");
        check(numMachines >= 1, "accelerate.num_machines must be at least 1");
        check(numProcesses >= numMachines, "accelerate.num_processes (all processes of all machines) must be at least num_machines");
        check(numProcesses % numMachines == 0, "accelerate.num_processes must be a multiple of num_machines (the same number of processes on every machine)");
        check(mixedPrecision != null && MIXED_PRECISION.contains(mixedPrecision), "accelerate.mixed_precision must be one of " + String.join(", ", MIXED_PRECISION));
        check(mainProcessPort > 0 && mainProcessPort < 65536, "accelerate.main_process_port must be a TCP port");
    }

    public int processesPerMachine() {
        return numProcesses / numMachines;
    }

    /** True for the set-ups that shard weights across processes (memory per GPU falls with their number). */
    public boolean shardsWeights() {
        return config.equals("fsdp") || config.equals("deepspeed_zero3");
    }

    /**
     * The accelerate config file ({@code accelerate launch --config_file}). Machine rank and the
     * main process's address are not in it: on Kubernetes each node passes its own
     * ({@code --machine_rank}, {@code --main_process_ip} from the Trainer's PET_ variables).
     * Sharded set-ups save a full state dict, so the stage's adapter or model is written as one
     * file set that PrefLoop's model core and PEFT load.
     */
    public String configYaml() {
        StringBuilder y = new StringBuilder();
        y.append("# written by PrefLoop from the run spec's accelerate section (config: ").append(config).append(")\n");
        y.append("compute_environment: LOCAL_MACHINE\n");
        y.append("distributed_type: ").append(switch (config) {
            case "fsdp" -> "FSDP";
            case "deepspeed_zero2", "deepspeed_zero3" -> "DEEPSPEED";
            default -> numProcesses > 1 ? "MULTI_GPU" : "NO";
        }).append('\n');
        y.append("num_machines: ").append(numMachines).append('\n');
        y.append("num_processes: ").append(numProcesses).append('\n');
        y.append("machine_rank: 0\n");
        y.append("main_process_port: ").append(mainProcessPort).append('\n');
        y.append("mixed_precision: '").append(mixedPrecision).append("'\n");
        y.append("rdzv_backend: static\n");
        y.append("same_network: true\n");
        y.append("use_cpu: false\n");
        if (config.equals("fsdp")) {
            y.append("""
                    fsdp_config:
                      fsdp_version: 2
                      fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
                      fsdp_reshard_after_forward: true
                      fsdp_offload_params: false
                      fsdp_state_dict_type: FULL_STATE_DICT
                      fsdp_cpu_ram_efficient_loading: true
                      fsdp_activation_checkpointing: false
                    """);
        } else if (config.startsWith("deepspeed")) {
            boolean zero3 = config.equals("deepspeed_zero3");
            y.append("deepspeed_config:\n");
            y.append("  zero_stage: ").append(zero3 ? 3 : 2).append('\n');
            y.append("  offload_optimizer_device: none\n");
            y.append("  offload_param_device: none\n");
            if (zero3) {
                y.append("  zero3_init_flag: true\n");
                y.append("  zero3_save_16bit_model: true\n");
            }
        }
        return y.toString();
    }

    private static void check(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }
}
