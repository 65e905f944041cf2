package org.prefloop.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.pytorch.jni.JniUtils;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * AdamW (decoupled weight decay) over named parameters, with its moment estimates held here so
 * they can be checkpointed. Also global-norm gradient clipping. Updates run with gradient mode
 * off, in place on the parameters. Weight decay spares biases and normalisation gains, as the
 * transformers Trainer does ({@link #decays}).
 */
public final class AdamW implements AutoCloseable {
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final Map<String, NDArray[]> moments = new LinkedHashMap<>();
    private long step;

    public AdamW(double beta1, double beta2, double eps, double weightDecay) {
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
    }

    public static AdamW defaults() {
        return new AdamW(0.9, 0.999, 1e-8, 0.0);
    }

    /**
     * The transformers Trainer's {@code get_decay_parameter_names}: no decay for a parameter whose
     * name (Hugging Face's) holds "bias", "layernorm", "rmsnorm", a ".norm." part or a "_norm" part
     * (input_layernorm, model.norm, Qwen3's q_norm/k_norm). Embeddings, projections and LoRA
     * matrices decay.
     */
    static final Pattern NO_DECAY = Pattern.compile("bias|layernorm|rmsnorm|(?:^|\\.)norm(?:$|\\.)|_norm(?:$|\\.)");

    static boolean decays(String name) {
        return !NO_DECAY.matcher(name.toLowerCase(java.util.Locale.ROOT)).find();
    }

    public long step() {
        return step;
    }

    /** Scales all gradients so their global L2 norm is at most {@code maxNorm}; returns the norm before clipping. */
    public static double clipGradNorm(List<NDArray> params, double maxNorm) {
        double sq = 0;
        for (NDArray p : params) {
            try (NDArray g = p.getGradient()) {
                sq += g.square().sum().getFloat();
            }
        }
        double norm = Math.sqrt(sq);
        if (maxNorm > 0 && norm > maxNorm) {
            float scale = (float) (maxNorm / (norm + 1e-6));
            boolean grad = JniUtils.isGradMode();
            JniUtils.setGradMode(false);
            for (NDArray p : params) {
                try (NDArray g = p.getGradient()) {
                    g.muli(scale);
                }
            }
            JniUtils.setGradMode(grad);
        }
        return norm;
    }

    /** One update of every parameter from its gradient, then the gradients are zeroed. */
    public void update(Map<String, NDArray> params, double lr) {
        step++;
        boolean grad = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        double c1 = 1 - Math.pow(beta1, step);
        double c2 = 1 - Math.pow(beta2, step);
        // Every temporary of the update is closed with the scope; moments and parameters are kept.
        try (NDScope scope = new NDScope()) {
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                NDArray p = e.getValue();
                NDArray[] mv = moments.computeIfAbsent(e.getKey(), k -> {
                    NDArray[] fresh = {p.zerosLike(), p.zerosLike()};
                    NDScope.unregister(fresh);
                    return fresh;
                });
                NDArray g = p.getGradient();
                mv[0].muli((float) beta1).addi(g.mul((float) (1 - beta1)));
                mv[1].muli((float) beta2).addi(g.square().muli((float) (1 - beta2)));
                NDArray update = mv[0].div((float) c1).divi(mv[1].div((float) c2).sqrt().addi((float) eps));
                if (weightDecay > 0 && decays(e.getKey())) p.muli((float) (1 - lr * weightDecay));
                p.subi(update.muli((float) lr));
                g.muli(0f);
            }
        } finally {
            JniUtils.setGradMode(grad);
        }
    }

    /** The moments, named {@code <param>.exp_avg} and {@code <param>.exp_avg_sq} (PyTorch's names), for a checkpoint. */
    public Map<String, NDArray> state() {
        Map<String, NDArray> out = new LinkedHashMap<>();
        moments.forEach((k, mv) -> {
            out.put(k + ".exp_avg", mv[0]);
            out.put(k + ".exp_avg_sq", mv[1]);
        });
        return out;
    }

    /** Restores what {@link #state()} saved and the step count; the arrays are copied into the parameters' managers. */
    public void restore(Map<String, NDArray> params, Map<String, NDArray> state, long step) {
        close();
        moments.clear();
        for (Map.Entry<String, NDArray> e : params.entrySet()) {
            NDArray m = state.get(e.getKey() + ".exp_avg");
            NDArray v = state.get(e.getKey() + ".exp_avg_sq");
            if (m == null || v == null) {
                if (step == 0) continue;
                throw new IllegalArgumentException("the checkpoint has no optimizer state for " + e.getKey());
            }
            NDArray p = e.getValue();
            NDArray[] mv = {p.getManager().create(m.toFloatArray(), p.getShape()), p.getManager().create(v.toFloatArray(), p.getShape())};
            moments.put(e.getKey(), mv);
        }
        this.step = step;
    }

    @Override
    public void close() {
        moments.values().forEach(mv -> {
            mv[0].close();
            mv[1].close();
        });
    }
}
