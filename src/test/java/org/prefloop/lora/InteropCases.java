package org.prefloop.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes the cases that src/test/python/interop_check.py checks against Hugging Face
 * transformers and PEFT: for each architecture option, a checkpoint PrefLoop wrote, a PEFT
 * adapter PrefLoop wrote, token ids, and the logits PrefLoop computes with and without it.
 *
 * <pre>./mvnw -B package -DskipTests -DskipNpm -Pbench -Dbench.main=org.prefloop.lora.InteropCases -Dbench.jvm.args=-Dinterop.out=.device/interop</pre>
 */
public final class InteropCases {
    static final TokenizerSpec CHARS = TokenizerSpec.characters("abcdefghijklmnopqrstuvwxyz0123456789 +=\n");
    static final ModelConfig BASE = ModelConfig.llama(CHARS.characterVocabSize(), 64, 128, 2, 4, 2).withTiedEmbeddings(false).withRmsNormEps(1e-6);
    static final List<String> TARGETS = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    public static void main(String[] args) throws Exception {
        Path out = Path.of(System.getProperty("interop.out", ".device/interop"));
        Map<String, ModelConfig> cases = new LinkedHashMap<>();
        cases.put("llama-gqa", BASE);
        cases.put("llama3-rope-scaling-tied", BASE.withTiedEmbeddings(true).withRope(500000.0, new ModelConfig.RopeScaling(8.0, 1.0, 4.0, 8)));
        cases.put("qwen2-biases", BASE.withModelType("qwen2").withTiedEmbeddings(true));
        cases.put("qwen3-qk-norm", BASE.withModelType("qwen3").withHeadDim(16));
        cases.put("mistral", BASE.withModelType("mistral"));
        long[][] ids = {{1, 5, 9, 14, 3, 22, 7, 30, 2, 11, 17, 4}, {8, 8, 21, 3, 15, 6, 27, 1, 19, 12, 5, 9}};
        ObjectMapper json = new ObjectMapper();
        int seed = 0;
        for (Map.Entry<String, ModelConfig> c : cases.entrySet()) {
            Path dir = out.resolve(c.getKey());
            Path model = TinyCheckpoint.write(dir.resolve("model"), c.getValue(), 100 + seed, CHARS);
            try (LlamaModel m = LlamaModel.load(model); NDManager scope = m.manager().newSubManager()) {
                NDArray input = scope.create(ids[0].length == ids[1].length ? concat(ids) : null).reshape(2, ids[0].length);
                float[][][] base = logits(m, input);
                LoraAdapter adapter = LoraAdapter.create(m, LoraAdapter.Config.of(4, 8, TARGETS, model.toString()), 7 + seed, true);
                adapter.save(dir.resolve("adapter"));
                m.setProjectionHook(adapter.hook());
                float[][][] adapted = logits(m, input);
                Files.writeString(dir.resolve("case.json"), json.writeValueAsString(Map.of(
                        "input_ids", ids, "logits", base, "adapter_logits", adapted, "r", 4, "lora_alpha", 8, "target_modules", TARGETS)));
            }
            seed++;
            System.out.println("wrote " + dir);
        }
    }

    private static long[] concat(long[][] rows) {
        long[] flat = new long[rows.length * rows[0].length];
        for (int i = 0; i < rows.length; i++) System.arraycopy(rows[i], 0, flat, i * rows[0].length, rows[0].length);
        return flat;
    }

    private static float[][][] logits(LlamaModel m, NDArray input) {
        NDArray l = m.logits(m.hidden(input, null, null));
        int b = (int) l.getShape().get(0), t = (int) l.getShape().get(1), v = (int) l.getShape().get(2);
        float[] flat = l.toFloatArray();
        float[][][] out = new float[b][t][v];
        for (int i = 0; i < b; i++) for (int j = 0; j < t; j++) System.arraycopy(flat, (i * t + j) * v, out[i][j], 0, v);
        return out;
    }
}
