package org.prefloop.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.TextTokenizer;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * TRL as the yardstick: the same full-fine-tuning steps (one full batch per step, constant
 * learning rate, weight decay and clipping on, dropout off, float32) on the same checkpoint and
 * data, through PrefLoop's pipeline (a run spec) and through TRL's own SFTTrainer and DPOTrainer
 * ({@code src/test/python/trl_parity.py}), must give the same token ids, per-step losses,
 * gradient norms and log-probabilities. Skipped, saying why, only where python3 cannot import trl.
 */
class TrlParityTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final TokenizerSpec CHARS = TokenizerSpec.characters("abcdefghijklmnopqrstuvwxyz ?:\n");
    static final int STEPS = 4;
    static final int EXAMPLES = 8;

    @BeforeAll
    static void needsTrl() {
        String why = Python.missing("trl", "transformers", "datasets", "torch");
        assumeTrue(why == null, why);
    }

    @Test
    void sftAndDpoStepsMatchTrl(@TempDir Path tmp) throws Exception {
        ModelConfig c = ModelConfig.llama(CHARS.characterVocabSize(), 32, 64, 2, 4, 2).withTiedEmbeddings(false);
        Path model = TinyCheckpoint.write(tmp.resolve("model"), c, 17, CHARS);
        writeData(tmp);

        List<Map<String, Object>> runs = List.of(
                run("sft", "sft", "sft.jsonl", null),
                run("dpo-sigmoid", "dpo", "dpo.jsonl", "sigmoid"),
                run("dpo-hinge", "dpo", "dpo.jsonl", "hinge"));
        Map<String, Object> cas = new LinkedHashMap<>();
        cas.put("model", model.toString());
        cas.put("runs", runs);
        Files.writeString(tmp.resolve("case.json"), JSON.writeValueAsString(cas));
        Python.run(List.of("src/test/python/trl_parity.py", tmp.toString()), tmp.resolve("trl.log"), 900);

        for (Map<String, Object> r : runs) {
            String name = (String) r.get("name");
            boolean dpo = r.get("kind").equals("dpo");
            Path out = tmp.resolve("prefloop-" + name);
            new AlignmentRun(RunSpec.parse(spec(r, model, out)), tmp, RunListener.NONE, () -> false).run();
            JsonNode trl = JSON.readTree(tmp.resolve(name + ".trl.json").toFile());
            assertSameIds(model, tmp, r, trl.get("ids"), dpo);

            List<JsonNode> ours = new ArrayList<>();
            for (String line : Files.readAllLines(out.resolve(dpo ? "dpo" : "sft").resolve("metrics.jsonl"))) ours.add(JSON.readTree(line));
            JsonNode theirs = trl.get("steps");
            assertEquals(STEPS, ours.size(), name + ": PrefLoop's steps");
            assertEquals(STEPS, theirs.size(), name + ": TRL's steps " + theirs);
            List<String> keys = dpo ? List.of("loss", "grad_norm", "logps/chosen", "logps/rejected", "rewards/margins") : List.of("loss", "grad_norm");
            double worst = 0;
            for (int s = 0; s < STEPS; s++) {
                for (String k : keys) {
                    double a = ours.get(s).get(k).asDouble(), b = theirs.get(s).get(k).asDouble();
                    assertEquals(b, a, 1e-6 + 5e-5 * Math.abs(b), name + " step " + (s + 1) + " " + k + ": PrefLoop " + a + ", TRL " + b);
                    worst = Math.max(worst, Math.abs(a - b) / Math.max(1e-3, Math.abs(b)));
                }
            }
            System.out.printf("%s: %d steps, TRL losses %s, PrefLoop's %s; largest relative difference %.2e%n", name, STEPS,
                    theirs.findValuesAsText("loss"), ours.stream().map(n -> n.get("loss").asText()).toList(), worst);
            double clip = ((Number) r.get("max_grad_norm")).doubleValue();
            assertTrue(ours.stream().anyMatch(n -> n.get("grad_norm").asDouble() > clip), name + ": clipping took effect");
            assertTrue(theirs.get(STEPS - 1).get("loss").asDouble() < theirs.get(0).get("loss").asDouble(), name + ": the steps train");
        }
    }

    /** The token ids TRL trained on are PrefLoop's, and so are the scored positions. */
    private static void assertSameIds(Path model, Path dir, Map<String, Object> r, JsonNode trlIds, boolean dpo) throws IOException {
        try (TextTokenizer tok = TextTokenizer.load(model)) {
            TrainingData data = new TrainingData(tok, ChatTemplate.load(model));
            List<JsonNode> rows = TrainingData.readLines(dir.resolve((String) r.get("dataset")));
            assertEquals(EXAMPLES, trlIds.size());
            if (dpo) {
                List<DpoTrainer.Pair> pairs = data.preferences(rows, (int) r.get("max_length"), null).examples();
                for (int i = 0; i < pairs.size(); i++) {
                    assertEquals(JSON.writeValueAsString(pairs.get(i).prompt()), trlIds.get(i).get("prompt").toString(), "prompt ids of pair " + i);
                    assertEquals(JSON.writeValueAsString(pairs.get(i).chosen()), trlIds.get(i).get("chosen").toString(), "chosen ids of pair " + i);
                    assertEquals(JSON.writeValueAsString(pairs.get(i).rejected()), trlIds.get(i).get("rejected").toString(), "rejected ids of pair " + i);
                }
            } else {
                List<SequenceLogProbs.Sequence> seqs = data.sft(rows, (int) r.get("max_length")).examples();
                for (int i = 0; i < seqs.size(); i++) {
                    assertEquals(JSON.writeValueAsString(seqs.get(i).ids()), trlIds.get(i).get("ids").toString(), "ids of example " + i);
                    int[] scored = new int[seqs.get(i).length()];
                    for (int j = 0; j < scored.length; j++) scored[j] = seqs.get(i).scored()[j] ? 1 : 0;
                    assertEquals(JSON.writeValueAsString(scored), trlIds.get(i).get("scored").toString(), "completion mask of example " + i);
                }
            }
        }
    }

    private static Map<String, Object> run(String name, String kind, String dataset, String lossType) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("name", name);
        r.put("kind", kind);
        r.put("dataset", dataset);
        r.put("batch_size", EXAMPLES);
        r.put("steps", STEPS);
        r.put("learning_rate", kind.equals("dpo") ? 1e-3 : 3e-3);
        r.put("weight_decay", 0.1);
        r.put("max_grad_norm", kind.equals("dpo") ? 0.05 : 1.0);
        r.put("max_length", 48);
        r.put("seed", 7);
        if (lossType != null) {
            r.put("beta", 0.5);
            r.put("loss_type", lossType);
        }
        return r;
    }

    /** The same settings as a PrefLoop run spec, full fine-tuning. */
    private static String spec(Map<String, Object> r, Path model, Path out) {
        StringBuilder s = new StringBuilder();
        s.append("model_name_or_path: ").append(model).append('\n');
        s.append("output_dir: ").append(out).append('\n');
        s.append("seed: ").append(r.get("seed")).append('\n');
        s.append(r.get("kind")).append(":\n");
        s.append("  dataset: ").append(r.get("dataset")).append('\n');
        s.append("  use_peft: false\n");
        s.append("  max_steps: ").append(r.get("steps")).append('\n');
        s.append("  per_device_train_batch_size: ").append(r.get("batch_size")).append('\n');
        s.append("  learning_rate: ").append(r.get("learning_rate")).append('\n');
        s.append("  lr_scheduler_type: constant\n");
        s.append("  weight_decay: ").append(r.get("weight_decay")).append('\n');
        s.append("  max_grad_norm: ").append(r.get("max_grad_norm")).append('\n');
        s.append("  max_length: ").append(r.get("max_length")).append('\n');
        if (r.containsKey("beta")) {
            s.append("  beta: ").append(r.get("beta")).append('\n');
            s.append("  loss_type: ").append(r.get("loss_type")).append('\n');
        }
        return s.toString();
    }

    /** Reversal prompts of different lengths: prompt-completion pairs for SFT, right and slipped answers for DPO. */
    private static void writeData(Path dir) throws IOException {
        String[] words = {"cat", "house", "tree", "blue", "quick", "zebra", "moon", "river"};
        StringBuilder sft = new StringBuilder(), dpo = new StringBuilder();
        for (String w : words) {
            String right = new StringBuilder(w).reverse().toString();
            String slip = right.substring(1) + right.charAt(0);
            String prompt = "reverse " + w + ":";
            sft.append(JSON.writeValueAsString(Map.of("prompt", prompt, "completion", " " + right))).append('\n');
            dpo.append(JSON.writeValueAsString(Map.of("prompt", prompt, "chosen", " " + right, "rejected", " " + slip))).append('\n');
        }
        Files.writeString(dir.resolve("sft.jsonl"), sft, StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("dpo.jsonl"), dpo, StandardCharsets.UTF_8);
    }
}
