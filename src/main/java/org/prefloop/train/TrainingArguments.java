package org.prefloop.train;

import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;

import java.util.List;

/**
 * The settings every stage shares, under the names of transformers' {@code TrainingArguments}
 * (and PEFT's {@code LoraConfig} for the adapter), each meaning what it means there. A stage's
 * own settings live in {@link SftConfig} and {@link DpoConfig}, as in TRL, which extends these.
 *
 * <p>A key is the component's name in snake_case (the naming strategy does the spelling), and an
 * absent key takes the default set in the constructor. To add a setting: add a component (boxed,
 * so absence is visible), its default below, and its check in {@link RunSpec}; nothing else
 * builds this record by position.
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
public record TrainingArguments(
        String dataset,
        String evalDataset,
        /* PrefLoop's own: share of the dataset held out for validation when no eval_dataset is given */
        Double evalSplit,
        // the adapter: TRL's use_peft, then PEFT's LoraConfig
        Boolean usePeft,
        Integer r,
        Double loraAlpha,
        Double loraDropout,
        List<String> targetModules,
        // the optimisation
        Double numTrainEpochs,
        Integer maxSteps,
        Integer perDeviceTrainBatchSize,
        Integer perDeviceEvalBatchSize,
        Integer gradientAccumulationSteps,
        Double learningRate,
        String lrSchedulerType,
        Double warmupRatio,
        Integer warmupSteps,
        Double weightDecay,
        Double adamBeta1,
        Double adamBeta2,
        Double adamEpsilon,
        Double maxGradNorm,
        // TRL's SFTConfig and DPOConfig both have it: tokens kept per example
        Integer maxLength,
        // evaluation, checkpoints, logging
        Integer evalSteps,
        Integer saveSteps,
        Integer loggingSteps,
        /* transformers' EarlyStoppingCallback */
        Integer earlyStoppingPatience) {

    public static final List<String> ALL_LINEAR = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    public TrainingArguments {
        evalSplit = or(evalSplit, 0.0);
        usePeft = or(usePeft, true);
        r = or(r, 16);
        loraAlpha = or(loraAlpha, 32.0);
        loraDropout = or(loraDropout, 0.0);
        targetModules = RunSpec.immutable(or(targetModules, ALL_LINEAR));
        numTrainEpochs = or(numTrainEpochs, 1.0);
        maxSteps = or(maxSteps, -1);
        perDeviceTrainBatchSize = or(perDeviceTrainBatchSize, 8);
        perDeviceEvalBatchSize = or(perDeviceEvalBatchSize, 8);
        gradientAccumulationSteps = or(gradientAccumulationSteps, 1);
        learningRate = or(learningRate, 2e-4);
        lrSchedulerType = or(lrSchedulerType, "cosine");
        warmupRatio = or(warmupRatio, 0.0);
        warmupSteps = or(warmupSteps, 0);
        weightDecay = or(weightDecay, 0.0);
        adamBeta1 = or(adamBeta1, 0.9);
        adamBeta2 = or(adamBeta2, 0.999);
        adamEpsilon = or(adamEpsilon, 1e-8);
        maxGradNorm = or(maxGradNorm, 1.0);
        maxLength = or(maxLength, 1024);
        evalSteps = or(evalSteps, 0);
        saveSteps = or(saveSteps, 0);
        loggingSteps = or(loggingSteps, 1);
        earlyStoppingPatience = or(earlyStoppingPatience, 0);
    }

    static <T> T or(T given, T otherwise) {
        return given != null ? given : otherwise;
    }

    /** The checks every stage's settings pass; {@code name} prefixes the key in the message. */
    void validate(String name) {
        RunSpec.require(dataset != null && !dataset.isBlank(), name + ".dataset is required");
        RunSpec.require(perDeviceTrainBatchSize >= 1, name + ".per_device_train_batch_size must be at least 1");
        RunSpec.require(perDeviceEvalBatchSize >= 1, name + ".per_device_eval_batch_size must be at least 1");
        RunSpec.require(gradientAccumulationSteps >= 1, name + ".gradient_accumulation_steps must be at least 1");
        RunSpec.require(learningRate > 0 && Double.isFinite(learningRate), name + ".learning_rate must be positive");
        RunSpec.require(numTrainEpochs > 0 || maxSteps > 0, name + ": num_train_epochs or max_steps must be positive");
        RunSpec.require(warmupRatio >= 0 && warmupRatio < 1, name + ".warmup_ratio must be in [0, 1)");
        RunSpec.require(evalSplit >= 0 && evalSplit < 1, name + ".eval_split must be in [0, 1)");
        RunSpec.require(maxLength >= 2, name + ".max_length must be at least 2");
        RunSpec.require(!usePeft || r > 0, name + ".r must be positive");
        RunSpec.require(!usePeft || !targetModules.isEmpty(), name + ".target_modules must not be empty");
        RunSpec.require(loraDropout >= 0 && loraDropout < 1, name + ".lora_dropout must be in [0, 1)");
        try {
            LrSchedule.checkType(lrSchedulerType);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(name + "." + e.getMessage());
        }
    }
}
