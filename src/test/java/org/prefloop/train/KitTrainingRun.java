package org.prefloop.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The GPU kit's PrefLoop side (gpu/run.sh): LoRA SFT steps, then LoRA DPO steps from the same
 * initial adapter, through PrefLoop's own trainers on whatever libtorch DJL loaded, and a record of
 * exactly what was trained so that src/test/python/kit_reference.py can take the same steps through
 * PEFT and compare losses.
 * <pre>KitTrainingRun MODEL OUT DEVICE SEQ SFT_BATCH DPO_PAIRS STEPS LR</pre>
 * MODEL is a Hugging Face directory, or {@code qwen2.5-0.5b} / {@code smollm2-135m} for that shape
 * with random weights (written once to OUT/model). DEVICE is {@code cpu} or {@code gpu}. Writes
 * OUT/adapter-init (PEFT layout: the adapter both sides start from), OUT/batches.json (the token
 * ids and which positions carry the loss) and OUT/prefloop.jsonl (one line per step: loss, seconds,
 * tokens/s), and prints the same lines.
 */
public final class KitTrainingRun {
    static final List<String> TARGETS = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
    private static final ObjectMapper JSON = new ObjectMapper();

    private KitTrainingRun() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 8) throw new IllegalArgumentException("usage: KitTrainingRun MODEL OUT DEVICE SEQ SFT_BATCH DPO_PAIRS STEPS LR");
        Path out = Path.of(args[1]);
        Device device = args[2].equals("gpu") ? Device.gpu() : Device.cpu();
        int seq = Integer.parseInt(args[3]), sftBatch = Integer.parseInt(args[4]), dpoPairs = Integer.parseInt(args[5]), steps = Integer.parseInt(args[6]);
        double lr = Double.parseDouble(args[7]);
        Files.createDirectories(out);
        Path model = modelDir(args[0], out);

        Engine engine = Engine.getEngine("PyTorch");
        System.out.printf("engine: PyTorch %s from %s, device %s (%d GPUs visible)%n", engine.getVersion(),
                ai.djl.pytorch.jni.LibUtils.getLibtorchPath(), device, engine.getGpuCount());
        List<String> lines = new ArrayList<>();
        try (LlamaModel llama = LlamaModel.load(model, device)) {
            int vocab = llama.config().vocabSize();
            SplittableRandom r = new SplittableRandom(7);
            int prompt = seq / 4;
            List<SequenceLogProbs.Sequence> sft = new ArrayList<>();
            for (int i = 0; i < sftBatch; i++) sft.add(SequenceLogProbs.Sequence.of(ids(r, prompt, vocab), ids(r, seq - prompt, vocab)));
            List<DpoTrainer.Pair> pairs = new ArrayList<>();
            for (int i = 0; i < dpoPairs; i++) pairs.add(new DpoTrainer.Pair(ids(r, prompt, vocab), ids(r, seq - prompt, vocab), ids(r, seq - prompt, vocab), 1));
            writeBatches(out.resolve("batches.json"), model, sft, pairs, steps, lr);

            Path init = out.resolve("adapter-init");
            try (LoraAdapter adapter = LoraAdapter.create(llama, LoraAdapter.Config.of(16, 32, TARGETS, model.toString()), 1, false)) {
                adapter.save(init);
                try (AdamW optimizer = AdamW.defaults(); SftTrainer trainer = new SftTrainer(llama, Trainable.lora(adapter), optimizer, 1.0)) {
                    for (int s = 1; s <= steps; s++) {
                        long t = System.nanoTime();
                        SftTrainer.Step step = trainer.step(sft, 1, lr);
                        lines.add(line("sft", s, step.loss(), (System.nanoTime() - t) / 1e9, step.tokens()));
                    }
                }
            }
            try (LoraAdapter adapter = LoraAdapter.load(init, llama)) {
                try (AdamW optimizer = AdamW.defaults();
                     DpoTrainer trainer = new DpoTrainer(llama, Trainable.lora(adapter), optimizer, DpoTrainer.Settings.defaults())) {
                    for (int s = 1; s <= steps; s++) {
                        long t = System.nanoTime();
                        DpoTrainer.Step step = trainer.step(pairs, 1, lr);
                        lines.add(line("dpo", s, step.loss(), (System.nanoTime() - t) / 1e9, step.tokens()));
                    }
                }
            }
        }
        String peak = JSON.writeValueAsString(Map.of("side", "prefloop", "peak_rss_bytes", TrainingBenchmark.peakRss()));
        System.out.println(peak);
        lines.add(peak);
        Files.write(out.resolve("prefloop.jsonl"), lines);
    }

    private static Path modelDir(String model, Path out) {
        if (!model.equals("qwen2.5-0.5b") && !model.equals("smollm2-135m")) return Path.of(model);
        Path dir = out.resolve("model-" + model);
        if (!Files.exists(dir.resolve("model.safetensors"))) {
            System.out.println("writing " + model + "'s shape with random weights to " + dir + " ...");
            TinyCheckpoint.write(dir, MemoryEstimateBenchmark.shape(model), 135, TokenizerSpec.characters("abcdefghijklmnopqrstuvwxyz0123456789 .,\n"));
        }
        return dir;
    }

    private static String line(String stage, int step, double loss, double seconds, int tokens) throws Exception {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("side", "prefloop");
        m.put("stage", stage);
        m.put("step", step);
        m.put("loss", loss);
        m.put("seconds", seconds);
        m.put("tokens_per_second", tokens / seconds);
        String line = JSON.writeValueAsString(m);
        System.out.println(line);
        return line;
    }

    private static void writeBatches(Path file, Path model, List<SequenceLogProbs.Sequence> sft, List<DpoTrainer.Pair> pairs, int steps, double lr) throws Exception {
        List<Map<String, Object>> sftRows = new ArrayList<>();
        for (SequenceLogProbs.Sequence s : sft) sftRows.add(Map.of("ids", s.ids(), "scored", s.scored()));
        List<Map<String, Object>> pairRows = new ArrayList<>();
        for (DpoTrainer.Pair p : pairs) pairRows.add(Map.of("prompt", p.prompt(), "chosen", p.chosen(), "rejected", p.rejected()));
        Map<String, Object> all = new LinkedHashMap<>();
        all.put("model", model.toAbsolutePath().toString());
        all.put("steps", steps);
        all.put("learning_rate", lr);
        all.put("beta", 0.1);
        all.put("max_grad_norm", 1.0);
        all.put("sft", sftRows);
        all.put("dpo", pairRows);
        JSON.writeValue(file.toFile(), all);
    }

    private static long[] ids(SplittableRandom r, int n, int vocab) {
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = r.nextInt(vocab);
        return ids;
    }
}
