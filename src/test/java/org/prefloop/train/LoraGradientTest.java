package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.TinyCheckpoint;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The gradient the trainers follow is the true gradient of their loss: autograd against central differences. */
class LoraGradientTest {

    private static double nll(LlamaModel model, List<SequenceLogProbs.Sequence> batch) {
        try (NDManager scope = model.manager().newSubManager()) {
            return -SequenceLogProbs.of(model, batch, scope).sum().getFloat();
        }
    }

    @Test
    void autogradThroughTheAdapterMatchesFiniteDifferences(@TempDir Path tmp) {
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), DpoTrainerTest.CONFIG, 3, DpoTrainerTest.CHARS);
        try (LlamaModel model = LlamaModel.load(ckpt)) {
            List<SequenceLogProbs.Sequence> batch = List.of(
                    SequenceLogProbs.Sequence.of(new long[]{3, 4, 5, 6}, new long[]{7, 8, 9}),
                    SequenceLogProbs.Sequence.of(new long[]{10, 11}, new long[]{12, 13, 14, 15}));
            LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(4, 8, List.of("q_proj", "down_proj"), null), 9, true);
            model.setProjectionHook(adapter.hook());
            for (String module : List.of("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj")) {
                for (int which = 0; which < 2; which++) {
                    NDArray p = adapter.weights().get(module)[which];
                    p.setRequiresGradient(true);
                    float autograd;
                    try (NDManager scope = model.manager().newSubManager();
                         GradientCollector c = Engine.getInstance().newGradientCollector()) {
                        NDArray loss = SequenceLogProbs.of(model, batch, scope).sum().neg();
                        c.backward(loss);
                        autograd = p.getGradient().toFloatArray()[1];
                    }
                    JniUtils.setGradMode(false);
                    float[] values = p.toFloatArray();
                    float h = 1e-2f;
                    values[1] += h;
                    p.set(values);
                    double up = nll(model, batch);
                    values[1] -= 2 * h;
                    p.set(values);
                    double down = nll(model, batch);
                    values[1] += h;
                    p.set(values);
                    double numeric = (up - down) / (2 * h);
                    assertEquals(numeric, autograd, Math.max(2e-3, 0.05 * Math.abs(numeric)), module + (which == 0 ? " lora_A" : " lora_B"));
                    p.setRequiresGradient(false);
                }
            }
        }
    }
}
