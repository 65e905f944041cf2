package org.prefloop.model;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * The Hugging Face Llama forward pass written out again in plain Java doubles, one loop per
 * formula, with no DJL: the yardstick the NDArray model is measured against. Written from the
 * transformers modeling code's definitions (RMSNorm, half-split rotary, GQA, SwiGLU,
 * llama3 rope scaling, Qwen3 q/k norms), not from LlamaModel.
 */
final class ReferenceLlama {
    private final ModelConfig c;
    private final Map<String, double[]> w = new HashMap<>();

    ReferenceLlama(Path dir) {
        c = ModelConfig.read(dir.resolve("config.json"));
        for (Path f : LlamaModel.weightFiles(dir)) {
            Safetensors.read(f).forEach((name, t) -> {
                float[] v = t.toFloatArray();
                double[] d = new double[v.length];
                for (int i = 0; i < v.length; i++) d[i] = v[i];
                w.put(name, d);
            });
        }
    }

    /** Logits [T][V] of one unpadded sequence. */
    double[][] logits(long[] ids) {
        int t = ids.length;
        int h = c.hiddenSize();
        int hd = c.headDim();
        int nh = c.numAttentionHeads();
        int nkv = c.numKeyValueHeads();
        double[][] x = new double[t][];
        double[] emb = w.get("model.embed_tokens.weight");
        for (int i = 0; i < t; i++) {
            x[i] = new double[h];
            System.arraycopy(emb, (int) ids[i] * h, x[i], 0, h);
        }
        double[] invFreq = invFreq();
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] q = new double[t][];
            double[][] k = new double[t][];
            double[][] v = new double[t][];
            for (int i = 0; i < t; i++) {
                double[] n = norm(x[i], w.get(p + "input_layernorm.weight"));
                q[i] = linear(n, p + "self_attn.q_proj");
                k[i] = linear(n, p + "self_attn.k_proj");
                v[i] = linear(n, p + "self_attn.v_proj");
                for (int head = 0; head < nh; head++) {
                    if (c.qkNorm()) normInPlace(q[i], head * hd, hd, w.get(p + "self_attn.q_norm.weight"));
                    rotate(q[i], head * hd, hd, i, invFreq);
                }
                for (int head = 0; head < nkv; head++) {
                    if (c.qkNorm()) normInPlace(k[i], head * hd, hd, w.get(p + "self_attn.k_norm.weight"));
                    rotate(k[i], head * hd, hd, i, invFreq);
                }
            }
            for (int i = 0; i < t; i++) {
                double[] attn = new double[nh * hd];
                for (int head = 0; head < nh; head++) {
                    int kvHead = head / (nh / nkv);
                    double[] scores = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        double s = 0;
                        for (int d = 0; d < hd; d++) s += q[i][head * hd + d] * k[j][kvHead * hd + d];
                        scores[j] = s / Math.sqrt(hd);
                        if (c.slidingWindow() > 0 && i - j >= c.slidingWindow()) scores[j] = Double.NEGATIVE_INFINITY;
                        max = Math.max(max, scores[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= i; j++) {
                        scores[j] = Math.exp(scores[j] - max);
                        sum += scores[j];
                    }
                    for (int j = 0; j <= i; j++) {
                        for (int d = 0; d < hd; d++) attn[head * hd + d] += scores[j] / sum * v[j][kvHead * hd + d];
                    }
                }
                double[] o = linear(attn, p + "self_attn.o_proj");
                for (int d = 0; d < h; d++) x[i][d] += o[d];
            }
            for (int i = 0; i < t; i++) {
                double[] n = norm(x[i], w.get(p + "post_attention_layernorm.weight"));
                double[] gate = linear(n, p + "mlp.gate_proj");
                double[] up = linear(n, p + "mlp.up_proj");
                for (int d = 0; d < gate.length; d++) gate[d] = gate[d] / (1 + Math.exp(-gate[d])) * up[d];
                double[] down = linear(gate, p + "mlp.down_proj");
                for (int d = 0; d < h; d++) x[i][d] += down[d];
            }
        }
        double[] head = c.tieWordEmbeddings() ? emb : w.get("lm_head.weight");
        double[][] out = new double[t][c.vocabSize()];
        for (int i = 0; i < t; i++) {
            double[] n = norm(x[i], w.get("model.norm.weight"));
            for (int vIdx = 0; vIdx < c.vocabSize(); vIdx++) {
                double s = 0;
                for (int d = 0; d < h; d++) s += n[d] * head[vIdx * h + d];
                out[i][vIdx] = s;
            }
        }
        return out;
    }

    private double[] linear(double[] in, String module) {
        double[] weight = w.get(module + ".weight");
        double[] bias = w.get(module + ".bias");
        int outDim = weight.length / in.length;
        double[] out = new double[outDim];
        for (int o = 0; o < outDim; o++) {
            double s = bias == null ? 0 : bias[o];
            for (int i = 0; i < in.length; i++) s += weight[o * in.length + i] * in[i];
            out[o] = s;
        }
        return out;
    }

    private double[] norm(double[] x, double[] weight) {
        double[] out = x.clone();
        normInPlace(out, 0, x.length, weight);
        return out;
    }

    private void normInPlace(double[] x, int from, int len, double[] weight) {
        double ms = 0;
        for (int i = 0; i < len; i++) ms += x[from + i] * x[from + i];
        double r = 1 / Math.sqrt(ms / len + c.rmsNormEps());
        for (int i = 0; i < len; i++) x[from + i] = x[from + i] * r * weight[i];
    }

    /** rotate_half layout: pairs (i, i + hd/2) turn by pos·invFreq[i]. */
    private static void rotate(double[] x, int from, int hd, int pos, double[] invFreq) {
        for (int i = 0; i < hd / 2; i++) {
            double a = x[from + i];
            double b = x[from + i + hd / 2];
            double cos = Math.cos(pos * invFreq[i]);
            double sin = Math.sin(pos * invFreq[i]);
            x[from + i] = a * cos - b * sin;
            x[from + i + hd / 2] = b * cos + a * sin;
        }
    }

    /** transformers' _compute_llama3_parameters, spelled out. */
    private double[] invFreq() {
        int hd = c.headDim();
        double[] inv = new double[hd / 2];
        for (int i = 0; i < hd / 2; i++) inv[i] = Math.pow(c.ropeTheta(), -(double) (2 * i) / hd);
        ModelConfig.RopeScaling rs = c.ropeScaling();
        if (rs == null) return inv;
        double[] out = new double[inv.length];
        for (int i = 0; i < inv.length; i++) {
            double wavelen = 2 * Math.PI / inv[i];
            double old = rs.originalMaxPositionEmbeddings();
            if (wavelen < old / rs.highFreqFactor()) {
                out[i] = inv[i];
            } else if (wavelen > old / rs.lowFreqFactor()) {
                out[i] = inv[i] / rs.factor();
            } else {
                double smooth = (old / wavelen - rs.lowFreqFactor()) / (rs.highFreqFactor() - rs.lowFreqFactor());
                out[i] = (1 - smooth) * inv[i] / rs.factor() + smooth * inv[i];
            }
        }
        return out;
    }
}
