package org.prefloop.train;

import org.junit.jupiter.api.Test;
import org.prefloop.model.ModelConfig;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The pre-flight estimate's arithmetic and the spec keys that change it (the measured comparison is MemoryEstimateBenchmark). */
class MemoryEstimateTest {

    @Test
    void checkpointingKeepsLayerInputsAndOneLayersIntermediates() {
        ModelConfig c = MemoryEstimateBenchmark.shape("smollm2-135m");
        long lora = MemoryEstimate.loraParameters(c, 16, List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"));
        MemoryEstimate plain = MemoryEstimate.of(c, lora, 2, 512, false), checkpointed = MemoryEstimate.of(c, lora, 2, 512, true);
        assertEquals(plain.weights(), checkpointed.weights());
        assertEquals(plain.optimizer(), checkpointed.optimizer());
        // measured (MemoryEstimateBenchmark, 2 x 512): 4.45 GiB peak plain under glibc's defaults, 2.99 with
        // the opt-in fixed mmap threshold (about 2.1 GiB of it activations); checkpointed about 1.0. The
        // plain pass keeps only what autograd saved (plus, by default, pages glibc kept after freeing), so
        // checkpointing's cut is 2x or more
        assertTrue(checkpointed.activations() * 2 < plain.activations(), checkpointed.activations() + " vs " + plain.activations());
        // the layer inputs alone: 30 layers x 1,024 tokens x 576 floats
        assertTrue(checkpointed.activations() > 4L * 30 * 1024 * 576);
        assertEquals(4 * MemoryEstimate.parameters(c), plain.weights());
        assertEquals(134_515_008L, MemoryEstimate.parameters(c), "SmolLM2-135M's published parameter count");
        // loading holds one tensor's mapping at a time beyond the weights: the embedding, not the file
        assertEquals(4L * 49_152 * 576, plain.loading());
    }

    @Test
    void gradientCheckpointingAndGroupByLengthAreRealSettingsNow() {
        RunSpec spec = RunSpec.parse("""
                model_name_or_path: m
                sft: {dataset: d.jsonl, gradient_checkpointing: true, group_by_length: true, bf16: true}
                """);
        assertTrue(spec.sft().training().gradientCheckpointing());
        assertTrue(spec.sft().training().groupByLength());
        assertEquals(java.util.Set.of("sft.bf16"), spec.trlOnly().keySet());
        assertFalse(RunSpec.parse("model_name_or_path: m\ndpo: {dataset: d.jsonl}\n").dpo().training().gradientCheckpointing());
    }
}
