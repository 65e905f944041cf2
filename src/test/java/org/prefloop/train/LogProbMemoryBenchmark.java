package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Peak resident memory of one LoRA DPO step (one pair, prompt + completion = {@code seq} tokens
 * each, reference pass with the adapter off, sigmoid loss, backward) on a 128k-vocabulary shape
 * (Llama 3's 128,256 entries; hidden 256, 2 layers), with log-probs at scored positions in chunks
 * ({@code -Dmode=scored}, what the trainers do) or the log-softmax at every position
 * ({@code -Dmode=every}, the previous path). Run each mode in its own JVM (the peak only grows):
 * <pre>java -cp target/classes:target/test-classes:$(cat cp.txt) -Dmode=every org.prefloop.train.LogProbMemoryBenchmark</pre>
 */
public final class LogProbMemoryBenchmark {
    private LogProbMemoryBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        String mode = System.getProperty("mode", "scored");
        int seq = Integer.getInteger("seq", 2048);
        Path dir = Path.of(System.getProperty("dir", "target/bench-vocab128k"));
        ModelConfig config = ModelConfig.llama(128256, 256, 512, 2, 4, 2);
        if (!Files.exists(dir.resolve("model.safetensors"))) {
            TinyCheckpoint.write(dir, config, 3, TokenizerSpec.characters("abcdefghijklmnopqrstuvwxyz0123456789 .,\n"));
        }
        Engine.getEngine("PyTorch");
        SplittableRandom r = new SplittableRandom(5);
        long[] prompt = ids(r, seq / 2), chosen = ids(r, seq - seq / 2), rejected = ids(r, seq - seq / 2);
        List<SequenceLogProbs.Sequence> batch = List.of(SequenceLogProbs.Sequence.of(prompt, chosen), SequenceLogProbs.Sequence.of(prompt, rejected));
        try (LlamaModel model = LlamaModel.load(dir)) {
            LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(16, 32,
                    List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), dir.toString()), 1, false);
            Trainable policy = Trainable.lora(adapter);
            long loaded = TrainingBenchmark.peakRss();
            long start = System.nanoTime();
            float loss;
            try (NDManager scope = model.manager().newSubManager()) {
                JniUtils.setGradMode(false);
                model.setProjectionHook(null);
                NDArray ref = logps(mode, model, batch, scope);
                JniUtils.setGradMode(true);
                model.setProjectionHook(policy.hook(true));
                try (GradientCollector c = Engine.getInstance().newGradientCollector()) {
                    NDArray lp = logps(mode, model, batch, scope);
                    NDArray h = lp.sub(ref);
                    NDArray margin = h.get(new NDIndex("0")).sub(h.get(new NDIndex("1"))).mul(0.1f);
                    NDArray l = margin.neg().exp().add(1f).log(); // -log sigmoid
                    c.backward(l);
                    loss = l.getFloat();
                }
            }
            System.out.printf("mode %s, 1 pair, prompt + completion = %d tokens each (%d scored), vocabulary %,d: loss %.6f, %.1f s, peak RSS %s (after loading %s, the step adds %s)%n",
                    mode, seq, seq - seq / 2, config.vocabSize(), loss, (System.nanoTime() - start) / 1e9, MemoryEstimate.gib(TrainingBenchmark.peakRss()),
                    MemoryEstimate.gib(loaded), MemoryEstimate.gib(TrainingBenchmark.peakRss() - loaded));
            adapter.close();
        }
    }

    private static NDArray logps(String mode, LlamaModel model, List<SequenceLogProbs.Sequence> batch, NDManager scope) {
        return mode.equals("every") ? SequenceLogProbsTest.everyPosition(model, batch, scope) : SequenceLogProbs.of(model, batch, scope);
    }

    private static long[] ids(SplittableRandom r, int n) {
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = r.nextInt(40);
        return ids;
    }
}
