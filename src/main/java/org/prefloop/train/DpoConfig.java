package org.prefloop.train;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;

import java.util.List;

/**
 * The DPO stage: the shared {@link TrainingArguments} and what only TRL's {@code DPOConfig} (or
 * PrefLoop's DPO stage) has. In a spec the two sit side by side under {@code dpo:}; an SFT setting
 * there is refused by {@link RunSpec}, naming it.
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
public record DpoConfig(
        TrainingArguments training,
        Double beta,
        /* TRL's loss_type: one name or a list, combined with loss_weights (see DpoLoss) */
        @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY)
        List<String> lossType,
        List<Double> lossWeights,
        Double labelSmoothing,
        /* SimPO's target margin γ (TRL's CPOConfig.simpo_gamma), used by loss_type simpo */
        Double simpoGamma,
        /* the older spelling of an sft term in loss_type with this weight (RPO); still read */
        Double rpoAlpha,
        /* PrefLoop's (TRL's before 1.0): cut the prompt from the left to this many tokens; unset: TRL 1.13's truncation */
        Integer maxPromptLength,
        /* PrefLoop's own: nats the held-out chosen answers may lose, per token or at their end token, before a displacement warning */
        Double displacementThreshold,
        /* PrefLoop's own: end the stage at the evaluation where displacement passes the threshold */
        Boolean stopOnDisplacement,
        Boolean precomputeRefLogProbs) {

    public DpoConfig {
        training = TrainingArguments.or(training, RunSpec.DEFAULT_TRAINING);
        beta = TrainingArguments.or(beta, 0.1);
        lossType = RunSpec.immutable(TrainingArguments.or(lossType, List.of("sigmoid")));
        lossWeights = lossWeights == null ? null : RunSpec.immutable(lossWeights);
        labelSmoothing = TrainingArguments.or(labelSmoothing, 0.0);
        simpoGamma = TrainingArguments.or(simpoGamma, 0.5);
        rpoAlpha = TrainingArguments.or(rpoAlpha, 0.0);
        displacementThreshold = TrainingArguments.or(displacementThreshold, 0.5);
        stopOnDisplacement = TrainingArguments.or(stopOnDisplacement, false);
        precomputeRefLogProbs = TrainingArguments.or(precomputeRefLogProbs, false);
    }

    /** The DPO objective these settings describe. */
    public DpoLoss.Objective objective() {
        return DpoLoss.Objective.of(lossType, lossWeights, rpoAlpha, beta, labelSmoothing, simpoGamma);
    }

    void validate() {
        training.validate("dpo");
        RunSpec.require(displacementThreshold > 0, "dpo.displacement_threshold must be positive");
        try {
            objective();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("dpo." + e.getMessage());
        }
    }
}
