package org.prefloop.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.LowRankHook;
import org.prefloop.model.OffHeap;
import org.prefloop.model.ProjectionHook;
import org.prefloop.model.Safetensors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

/**
 * A LoRA adapter in PEFT's layout: {@code adapter_config.json} and {@code adapter_model.safetensors}
 * with PEFT's key names ({@code base_model.model.<module>.lora_A.weight}, {@code ...lora_B.weight}),
 * so that an adapter moves between PrefLoop, PEFT and vLLM. Attached to a model through its
 * projection hook, it adds {@code scaling * x Aᵀ Bᵀ} to each targeted projection, with
 * {@code scaling = lora_alpha / r} (or {@code lora_alpha / sqrt(r)} with rsLoRA).
 */
public final class LoraAdapter implements AutoCloseable {
    static final String CONFIG = "adapter_config.json";
    static final String WEIGHTS = "adapter_model.safetensors";
    private static final String PREFIX = "base_model.model.";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** PEFT's LoraConfig fields that change the computation, under PEFT's names. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Config(@JsonProperty("peft_type") String peftType,
                         @JsonProperty("task_type") String taskType,
                         @JsonProperty("r") int r,
                         @JsonProperty("lora_alpha") double loraAlpha,
                         @JsonProperty("lora_dropout") double loraDropout,
                         @JsonProperty("target_modules") List<String> targetModules,
                         @JsonProperty("use_rslora") boolean useRslora,
                         @JsonProperty("bias") String bias,
                         @JsonProperty("base_model_name_or_path") String baseModel,
                         @JsonProperty("inference_mode") boolean inferenceMode) {
        public Config {
            if (peftType != null && !peftType.equals("LORA")) throw new IllegalArgumentException("unsupported peft_type " + peftType + " (only LORA)");
            if (r <= 0) throw new IllegalArgumentException("r must be positive, got " + r);
            if (bias != null && !bias.equals("none")) throw new IllegalArgumentException("unsupported bias '" + bias + "' (only 'none')");
        }

        public static Config of(int r, double alpha, List<String> targetModules, String baseModel) {
            return new Config("LORA", "CAUSAL_LM", r, alpha, 0.0, List.copyOf(targetModules), false, "none", baseModel, true);
        }

        public double scaling() {
            return useRslora ? loraAlpha / Math.sqrt(r) : loraAlpha / r;
        }
    }

    private final Config config;
    /** module name (e.g. model.layers.0.self_attn.q_proj) -> {A [r, in], B [out, r]} */
    private final Map<String, NDArray[]> weights;
    private final NDArray scaling;

    private LoraAdapter(Config config, Map<String, NDArray[]> weights, NDManager manager) {
        this.config = config;
        this.weights = weights;
        this.scaling = manager.create((float) config.scaling());
    }

    public Config config() {
        return config;
    }

    /** module name -> {lora_A, lora_B}; the live arrays, so a trainer can attach gradients to them. */
    public Map<String, NDArray[]> weights() {
        return weights;
    }

    /** Reads a PEFT adapter directory for {@code model}; a module the model lacks or a misshapen matrix is an error naming it. */
    public static LoraAdapter load(Path dir, LlamaModel model) {
        Config config;
        try {
            config = JSON.readValue(dir.resolve(CONFIG).toFile(), Config.class);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + dir.resolve(CONFIG), e);
        }
        Map<String, NDArray[]> weights = new TreeMap<>();
        NDManager manager = model.manager();
        try (OffHeap memory = OffHeap.open()) { // the arrays are copies: the file's pages leave the resident set at once
            for (Map.Entry<String, Safetensors.Tensor> t : Safetensors.read(dir.resolve(WEIGHTS), memory).entrySet()) {
                String key = t.getKey();
                boolean a = key.endsWith(".lora_A.weight");
                if (!a && !key.endsWith(".lora_B.weight")) throw new IllegalArgumentException(WEIGHTS + ": unexpected tensor " + key);
                String module = key.substring(key.startsWith(PREFIX) ? PREFIX.length() : 0, key.length() - ".lora_A.weight".length());
                NDArray base = model.parameters().get(module + ".weight");
                if (base == null) throw new IllegalArgumentException(WEIGHTS + ": the model has no module " + module + " (tensor " + key + ")");
                NDArray w = t.getValue().toNDArray(manager);
                Shape expected = a ? new Shape(config.r(), base.getShape().get(1)) : new Shape(base.getShape().get(0), config.r());
                if (!w.getShape().equals(expected)) {
                    throw new IllegalArgumentException(WEIGHTS + ": tensor " + key + " has shape " + w.getShape() + ", expected " + expected);
                }
                weights.computeIfAbsent(module, m -> new NDArray[2])[a ? 0 : 1] = w;
            }
        }
        weights.forEach((m, ab) -> {
            if (ab[0] == null || ab[1] == null) throw new IllegalArgumentException(WEIGHTS + ": module " + m + " lacks lora_A or lora_B");
        });
        return new LoraAdapter(config, weights, manager);
    }

    /**
     * A new adapter on every module whose name ends in one of {@code config.targetModules()}:
     * A drawn uniformly in ±1/sqrt(in) and B zero, as PEFT initialises it, so the adapted model
     * starts equal to the base. {@code nonZeroB} draws B too (for tests of the arithmetic).
     */
    public static LoraAdapter create(LlamaModel model, Config config, long seed, boolean nonZeroB) {
        Random rnd = new Random(seed);
        Map<String, NDArray[]> weights = new TreeMap<>();
        for (Map.Entry<String, NDArray> p : new TreeMap<>(model.parameters()).entrySet()) {
            String name = p.getKey();
            if (!name.endsWith(".weight") || p.getValue().getShape().dimension() != 2 || name.contains("embed") || name.startsWith("lm_head")) continue;
            String module = name.substring(0, name.length() - ".weight".length());
            String leaf = module.substring(module.lastIndexOf('.') + 1);
            if (!config.targetModules().contains(leaf)) continue;
            long out = p.getValue().getShape().get(0);
            long in = p.getValue().getShape().get(1);
            float bound = (float) (1 / Math.sqrt(in));
            NDArray a = model.manager().create(uniform(rnd, (int) (config.r() * in), bound), new Shape(config.r(), in));
            NDArray b = model.manager().create(nonZeroB ? uniform(rnd, (int) (out * config.r()), bound) : new float[(int) (out * config.r())],
                    new Shape(out, config.r()));
            weights.put(module, new NDArray[]{a, b});
        }
        if (weights.isEmpty()) throw new IllegalArgumentException("no module of the model matches target_modules " + config.targetModules());
        return new LoraAdapter(config, weights, model.manager());
    }

    private static float[] uniform(Random rnd, int n, float bound) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (rnd.nextFloat() * 2 - 1) * bound;
        return v;
    }

    /** The hook that applies this adapter; set it on the model with {@link LlamaModel#setProjectionHook}. */
    public ProjectionHook hook() {
        return (module, x) -> {
            NDArray[] ab = weights.get(module);
            if (ab == null) return null;
            return x.matMul(ab[0].transpose()).matMul(ab[1].transpose()).mul(scaling);
        };
    }

    /**
     * A frozen copy of this adapter in serving form ({@link LowRankHook}: Aᵀ and scaling·Bᵀ per
     * module), independent of this adapter's arrays: rows of a batch on several such hooks share
     * one stacked pass per projection. The caller closes it. Training keeps using {@link #hook()},
     * which reads the live matrices.
     */
    public LowRankHook servingHook() {
        return LowRankHook.of(weights, (float) config.scaling(), scaling.getManager());
    }

    /** Writes {@code adapter_config.json} and {@code adapter_model.safetensors} in PEFT's layout. */
    public void save(Path dir) {
        try {
            Files.createDirectories(dir);
            JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve(CONFIG).toFile(), config);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Map<String, NDArray> tensors = new TreeMap<>();
        weights.forEach((m, ab) -> {
            tensors.put(PREFIX + m + ".lora_A.weight", ab[0]);
            tensors.put(PREFIX + m + ".lora_B.weight", ab[1]);
        });
        Safetensors.write(dir.resolve(WEIGHTS), tensors, Map.of("format", "pt"));
    }

    /** Adds {@code scaling * B A} into the model's own weights: the merged model needs no hook. */
    public void mergeInto(LlamaModel model) {
        weights.forEach((m, ab) -> {
            NDArray w = model.parameters().get(m + ".weight");
            try (NDArray delta = ab[1].matMul(ab[0]).mul(scaling)) {
                w.addi(delta);
            }
        });
    }

    @Override
    public void close() {
        weights.values().forEach(ab -> {
            ab[0].close();
            ab[1].close();
        });
        scaling.close();
    }
}
