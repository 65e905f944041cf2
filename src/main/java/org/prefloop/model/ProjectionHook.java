package org.prefloop.model;

import ai.djl.ndarray.NDArray;

/**
 * Adds a learned delta to one linear projection of the model: the seam through which LoRA
 * adapters plug in without the model knowing about them.
 */
@FunctionalInterface
public interface ProjectionHook {
    /**
     * @param module the Hugging Face module name without {@code .weight}, e.g. {@code model.layers.3.self_attn.q_proj}
     * @param input the projection's input, [..., in]
     * @return null for no change, or an array shaped like the projection's output that is added to it
     */
    NDArray delta(String module, NDArray input);
}
