package org.prefloop.train;

import com.fasterxml.jackson.annotation.JsonAnySetter;
import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * One alignment run, as YAML or JSON: the model, an optional SFT stage, an optional DPO stage,
 * and a seed. Hyperparameters carry the names of TRL's {@code SFTConfig}/{@code DPOConfig} and
 * PEFT's {@code LoraConfig}, so a team's settings carry over. Settings TRL knows but PrefLoop
 * does not apply (mixed precision, logging back-ends, ...) are accepted and listed by the
 * pre-flight report; anything else is an error naming the key (a typo must not pass silently).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public final class RunSpec {
    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory()).configure(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES, true);
    static final ObjectMapper JSON = new ObjectMapper();

    /** The executors a spec may name (see the README's Executors section). */
    public static final List<String> EXECUTORS = List.of("djl", "trl");

    /** TRL/transformers settings that are accepted but have no effect here. */
    static final Set<String> IGNORED_TRL_KEYS = Set.of("bf16", "fp16", "tf32", "report_to", "logging_dir", "run_name",
            "push_to_hub", "hub_model_id", "dataloader_num_workers", "gradient_checkpointing", "optim", "save_total_limit",
            "eval_strategy", "evaluation_strategy", "save_strategy", "logging_strategy", "remove_unused_columns",
            "dataset_text_field", "model_init_kwargs", "ref_model_init_kwargs", "use_liger_kernel", "task_type", "bias");

    public String name = "run";
    /** A Hugging Face directory (relative paths resolve against the spec's directory). */
    @JsonProperty("model_name_or_path")
    public String model;
    @JsonProperty("output_dir")
    public String outputDir = "runs/run";
    public long seed = 42;
    /** PrefLoop's own: where the run executes, {@code djl} (the built-in trainer) or {@code trl}; unset: the worker's default. */
    public String executor;
    public Stage sft;
    public Stage dpo;
    /** A KTO stage (TRL's KTOTrainer) on unpaired thumbs-up/down data, instead of a dpo stage. */
    public Stage kto;
    /** General-domain examples (SFT formats) whose loss before and after the run is the forgetting report. */
    @JsonProperty("forgetting_dataset")
    public String forgettingDataset;
    @JsonIgnore
    public final Map<String, Object> unknown = new TreeMap<>();

    @JsonAnySetter
    void other(String key, Object value) {
        unknown.put(key, value);
    }

    /** One training stage, with TRL's names. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public static final class Stage {
        public String dataset;
        @JsonProperty("eval_dataset")
        public String evalDataset;
        /** Share of the dataset held out for validation when no eval_dataset is given. */
        @JsonProperty("eval_split")
        public double evalSplit = 0.0;
        @JsonProperty("use_peft")
        public boolean usePeft = true;
        public Integer r = 16;
        @JsonProperty("lora_alpha")
        public Double loraAlpha = 32.0;
        @JsonProperty("lora_dropout")
        public Double loraDropout = 0.0;
        @JsonProperty("target_modules")
        public List<String> targetModules = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
        @JsonProperty("num_train_epochs")
        public double numTrainEpochs = 1;
        @JsonProperty("max_steps")
        public int maxSteps = -1;
        @JsonProperty("per_device_train_batch_size")
        public int batchSize = 8;
        @JsonProperty("per_device_eval_batch_size")
        public int evalBatchSize = 8;
        @JsonProperty("gradient_accumulation_steps")
        public int gradientAccumulationSteps = 1;
        @JsonProperty("learning_rate")
        public double learningRate = 2e-4;
        @JsonProperty("lr_scheduler_type")
        public String lrSchedulerType = "cosine";
        @JsonProperty("warmup_ratio")
        public double warmupRatio = 0.0;
        @JsonProperty("warmup_steps")
        public int warmupSteps = 0;
        @JsonProperty("weight_decay")
        public double weightDecay = 0.0;
        @JsonProperty("adam_beta1")
        public double adamBeta1 = 0.9;
        @JsonProperty("adam_beta2")
        public double adamBeta2 = 0.999;
        @JsonProperty("adam_epsilon")
        public double adamEpsilon = 1e-8;
        @JsonProperty("max_grad_norm")
        public double maxGradNorm = 1.0;
        @JsonProperty("max_length")
        public int maxLength = 1024;
        @JsonProperty("max_prompt_length")
        public Integer maxPromptLength;
        public boolean packing = false;
        @JsonProperty("eval_steps")
        public int evalSteps = 0;
        @JsonProperty("save_steps")
        public int saveSteps = 0;
        @JsonProperty("logging_steps")
        public int loggingSteps = 1;
        @JsonProperty("early_stopping_patience")
        public int earlyStoppingPatience = 0;
        /** General examples mixed into each SFT batch against forgetting, and their share of the batch. */
        @JsonProperty("replay_dataset")
        public String replayDataset;
        @JsonProperty("replay_ratio")
        public double replayRatio = 0.0;
        // DPO
        public double beta = 0.1;
        /**
         * TRL's loss_type: for dpo one name or a list, combined with loss_weights (see {@link DpoLoss}),
         * unset meaning sigmoid; for kto {@code kto} (unset) or {@code apo_zero_unpaired} (see {@link KtoLoss}).
         */
        @JsonProperty("loss_type")
        @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY)
        public List<String> lossType;
        @JsonProperty("loss_weights")
        public List<Double> lossWeights;
        @JsonProperty("label_smoothing")
        public double labelSmoothing = 0.0;
        /** SimPO's target margin γ (TRL's CPOConfig.simpo_gamma), used by loss_type simpo. */
        @JsonProperty("simpo_gamma")
        public double simpoGamma = 0.5;
        /** The older spelling of an {@code sft} term in loss_type with this weight (RPO). */
        @JsonProperty("rpo_alpha")
        public double rpoAlpha = 0.0;
        /** PrefLoop's own: nats the held-out chosen answers may lose, per token or at their end token, before a displacement warning. */
        @JsonProperty("displacement_threshold")
        public double displacementThreshold = 0.5;
        /** PrefLoop's own: end the DPO stage at the evaluation where displacement passes the threshold. */
        @JsonProperty("stop_on_displacement")
        public boolean stopOnDisplacement = false;
        /** KTOConfig's weights of the desirable (thumbs up) and undesirable (thumbs down) examples' losses. */
        @JsonProperty("desirable_weight")
        public Double desirableWeight;
        @JsonProperty("undesirable_weight")
        public Double undesirableWeight;
        @JsonProperty("precompute_ref_log_probs")
        public boolean precomputeRefLogProbs = false;
        @JsonIgnore
        public final Map<String, Object> unknown = new TreeMap<>();

        @JsonAnySetter
        void other(String key, Object value) {
            unknown.put(key, value);
        }

        /** The DPO objective these settings describe. */
        public DpoLoss.Objective objective() {
            return DpoLoss.Objective.of(lossType == null ? List.of("sigmoid") : lossType, lossWeights, rpoAlpha, beta, labelSmoothing, simpoGamma);
        }

        /** The KTO objective these settings describe (a kto stage). */
        public KtoLoss.Objective ktoObjective() {
            return KtoLoss.Objective.of(lossType, beta, desirableWeight == null ? 1.0 : desirableWeight, undesirableWeight == null ? 1.0 : undesirableWeight);
        }
    }

    public static RunSpec read(Path file) {
        try {
            return parse(Files.readString(file));
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the run spec " + file + ": " + e.getMessage());
        }
    }

    /** Parses YAML (JSON is YAML too) and checks it; a problem is an IllegalArgumentException naming the key. */
    public static RunSpec parse(String text) {
        RunSpec spec;
        try {
            spec = YAML.readValue(text, RunSpec.class);
        } catch (IOException e) {
            String msg = e.getMessage();
            throw new IllegalArgumentException("the run spec is not valid: " + (msg == null ? e : msg.lines().findFirst().orElse(msg)));
        }
        if (spec == null) throw new IllegalArgumentException("the run spec is empty");
        spec.validate();
        return spec;
    }

    void validate() {
        require(model != null && !model.isBlank(), "model_name_or_path is required");
        require(sft != null || dpo != null || kto != null, "a run needs an sft stage, a dpo or kto stage, or both");
        require(dpo == null || kto == null, "a run has a dpo stage or a kto stage, not both");
        require(kto == null || !"trl".equals(executor), "executor trl does not run a kto stage yet; use executor djl");
        require(executor == null || EXECUTORS.contains(executor), "executor must be one of " + String.join(", ", EXECUTORS) + ", not '" + executor + "'");
        rejectUnknown("", unknown);
        if (sft != null) validate("sft", sft);
        if (dpo != null) {
            validate("dpo", dpo);
            require(dpo.displacementThreshold > 0, "dpo.displacement_threshold must be positive");
            try {
                dpo.objective();
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("dpo." + e.getMessage());
            }
            require(dpo.desirableWeight == null && dpo.undesirableWeight == null, "dpo: desirable_weight and undesirable_weight are kto settings");
        }
        if (kto != null) {
            validate("kto", kto);
            require(kto.usePeft, "kto.use_peft must be true: the KTO stage trains a LoRA adapter, its reference is the model with the adapter off");
            // TRL refuses it too: with one example per micro-batch the KL estimate is the example's own reward
            require(kto.batchSize >= 2, "kto.per_device_train_batch_size must be at least 2: the KL reference point comes from the other examples of the batch");
            require(kto.lossWeights == null && kto.rpoAlpha == 0 && kto.labelSmoothing == 0, "kto: loss_weights, rpo_alpha and label_smoothing are dpo settings");
            try {
                kto.ktoObjective();
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("kto." + e.getMessage());
            }
        }
    }

    private static void validate(String name, Stage s) {
        rejectUnknown(name + ".", s.unknown);
        require(s.dataset != null && !s.dataset.isBlank(), name + ".dataset is required");
        require(s.batchSize >= 1, name + ".per_device_train_batch_size must be at least 1");
        require(s.gradientAccumulationSteps >= 1, name + ".gradient_accumulation_steps must be at least 1");
        require(s.learningRate > 0 && Double.isFinite(s.learningRate), name + ".learning_rate must be positive");
        require(s.numTrainEpochs > 0 || s.maxSteps > 0, name + ": num_train_epochs or max_steps must be positive");
        require(s.warmupRatio >= 0 && s.warmupRatio < 1, name + ".warmup_ratio must be in [0, 1)");
        require(s.evalSplit >= 0 && s.evalSplit < 1, name + ".eval_split must be in [0, 1)");
        require(s.replayRatio >= 0 && s.replayRatio < 1, name + ".replay_ratio must be in [0, 1)");
        require(s.replayRatio == 0 || s.replayDataset != null, name + ".replay_ratio needs a replay_dataset");
        require(s.maxLength >= 2, name + ".max_length must be at least 2");
        require(!s.usePeft || (s.r != null && s.r > 0), name + ".r must be positive");
        require(!s.usePeft || (s.targetModules != null && !s.targetModules.isEmpty()), name + ".target_modules must not be empty");
        require(s.loraDropout == null || (s.loraDropout >= 0 && s.loraDropout < 1), name + ".lora_dropout must be in [0, 1)");
        LrSchedule.checkType(s.lrSchedulerType);
    }

    private static void rejectUnknown(String prefix, Map<String, Object> keys) {
        List<String> bad = new ArrayList<>();
        for (String k : keys.keySet()) if (!IGNORED_TRL_KEYS.contains(k)) bad.add(prefix + k);
        if (!bad.isEmpty()) throw new IllegalArgumentException("unknown setting " + String.join(", ", bad) + " in the run spec");
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }

    /** Settings given but without effect here (listed by the pre-flight report). */
    public List<String> ignoredSettings() {
        List<String> out = new ArrayList<>(unknown.keySet());
        if (sft != null) sft.unknown.keySet().forEach(k -> out.add("sft." + k));
        if (dpo != null) dpo.unknown.keySet().forEach(k -> out.add("dpo." + k));
        if (kto != null) kto.unknown.keySet().forEach(k -> out.add("kto." + k));
        return out;
    }

    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
