package org.prefloop.train;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.norm.Dropout;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ProjectionHook;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What an optimizer updates: the matrices of a LoRA adapter (the base stays frozen: no gradient,
 * no optimizer state) or, for full fine-tuning, every weight of the model.
 */
public final class Trainable {
    private final Map<String, NDArray> parameters;
    private final LoraAdapter adapter;
    private final double dropout;

    private Trainable(Map<String, NDArray> parameters, LoraAdapter adapter, double dropout) {
        this.parameters = parameters;
        this.adapter = adapter;
        this.dropout = dropout;
        parameters.values().forEach(p -> p.setRequiresGradient(true));
    }

    /** The adapter's A and B matrices, with PEFT's lora_dropout on the adapter's input while training. */
    public static Trainable lora(LoraAdapter adapter) {
        Map<String, NDArray> named = new LinkedHashMap<>();
        adapter.weights().forEach((module, ab) -> {
            named.put(module + ".lora_A.weight", ab[0]);
            named.put(module + ".lora_B.weight", ab[1]);
        });
        return new Trainable(named, adapter, adapter.config().loraDropout());
    }

    /** Every weight of the model (full fine-tuning). */
    public static Trainable full(LlamaModel model) {
        return new Trainable(new LinkedHashMap<>(model.parameters()), null, 0);
    }

    public Map<String, NDArray> parameters() {
        return parameters;
    }

    /** The adapter, or null for full fine-tuning. */
    public LoraAdapter adapter() {
        return adapter;
    }

    public long parameterCount() {
        return parameters.values().stream().mapToLong(p -> p.getShape().size()).sum();
    }

    /** The hook that applies the trained weights: the adapter's (with dropout when training), none for full fine-tuning. */
    public ProjectionHook hook(boolean training) {
        if (adapter == null) return null;
        ProjectionHook plain = adapter.hook();
        if (!training || dropout <= 0) return plain;
        return (module, x) -> adapter.weights().containsKey(module)
                ? plain.delta(module, Dropout.dropout(x, (float) dropout, true).head()) : null;
    }
}
