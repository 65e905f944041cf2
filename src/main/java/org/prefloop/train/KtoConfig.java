package org.prefloop.train;

import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;

/**
 * The KTO stage (instead of a DPO stage): the shared {@link TrainingArguments} and what TRL's
 * {@code KTOConfig} has beside them, {@code loss_type} ({@code kto} or {@code apo_zero_unpaired}),
 * {@code beta}, {@code desirable_weight} and {@code undesirable_weight} (see {@link KtoLoss}).
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
public record KtoConfig(
        TrainingArguments training,
        String lossType,
        Double beta,
        Double desirableWeight,
        Double undesirableWeight) {

    public KtoConfig {
        training = TrainingArguments.or(training, RunSpec.DEFAULT_TRAINING);
        lossType = TrainingArguments.or(lossType, "kto");
        beta = TrainingArguments.or(beta, 0.1);
        desirableWeight = TrainingArguments.or(desirableWeight, 1.0);
        undesirableWeight = TrainingArguments.or(undesirableWeight, 1.0);
    }

    /** The KTO objective these settings describe. */
    public KtoLoss.Objective objective() {
        return new KtoLoss.Objective(KtoLoss.Type.parse(lossType), beta, desirableWeight, undesirableWeight);
    }

    void validate() {
        training.validate("kto");
        RunSpec.require(training.usePeft(), "kto.use_peft must be true: the KTO stage trains a LoRA adapter, its reference is the model with the adapter off");
        // TRL refuses it too: with one example per micro-batch the KL estimate is the example's own reward
        RunSpec.require(training.perDeviceTrainBatchSize() >= 2,
                "kto.per_device_train_batch_size must be at least 2: the KL reference point comes from the other examples of the batch");
        try {
            objective();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("kto." + e.getMessage());
        }
    }
}
