package org.prefloop.train;

import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;

/**
 * The SFT stage: the shared {@link TrainingArguments} and what only TRL's {@code SFTConfig} (or
 * PrefLoop's SFT stage) has. In a spec the two sit side by side under {@code sft:}; a DPO setting
 * there is refused by {@link RunSpec}, naming it.
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
public record SftConfig(
        TrainingArguments training,
        /* TRL's: concatenate examples into rows of max_length, each keeping its own loss mask */
        Boolean packing,
        /* PrefLoop's own: general examples mixed into each batch against forgetting, and their share of the batch */
        String replayDataset,
        Double replayRatio) {

    public SftConfig {
        training = TrainingArguments.or(training, RunSpec.DEFAULT_TRAINING);
        packing = TrainingArguments.or(packing, false);
        replayRatio = TrainingArguments.or(replayRatio, 0.0);
    }

    void validate() {
        training.validate("sft");
        RunSpec.require(replayRatio >= 0 && replayRatio < 1, "sft.replay_ratio must be in [0, 1)");
        RunSpec.require(replayRatio == 0 || replayDataset != null, "sft.replay_ratio needs a replay_dataset");
    }
}
