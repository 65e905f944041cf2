package org.prefloop.train;

import com.fasterxml.jackson.databind.JsonNode;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.TextTokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * A run spec with everything read that the checks and the training need, except the weights:
 * the model's config, tokenizer and chat template, and each stage's examples, tokenised, with the
 * validation share split off by the seed.
 */
final class PreparedRun implements AutoCloseable {
    final RunSpec spec;
    final Path modelDir;
    final ModelConfig config;
    final TextTokenizer tokenizer;
    final ChatTemplate template;
    final StageData<SequenceLogProbs.Sequence> sft;
    final StageData<DpoTrainer.Pair> dpo;
    final StageData<KtoTrainer.Example> kto;
    final TrainingData.Loaded<SequenceLogProbs.Sequence> replay;
    final TrainingData.Loaded<SequenceLogProbs.Sequence> forgetting;

    /** A stage's training examples and its held-out ones (null when it has none). */
    record StageData<T>(TrainingData.Loaded<T> train, TrainingData.Loaded<T> eval) {
    }

    PreparedRun(RunSpec spec, Path specDir) {
        this.spec = spec;
        this.modelDir = resolve(specDir, spec.modelNameOrPath());
        if (!Files.isRegularFile(modelDir.resolve("config.json"))) {
            throw new IllegalArgumentException("model_name_or_path " + spec.modelNameOrPath() + " is not a Hugging Face directory (no config.json in " + modelDir + ")");
        }
        this.config = ModelConfig.read(modelDir.resolve("config.json"));
        this.tokenizer = TextTokenizer.load(modelDir);
        ChatTemplate t;
        try {
            t = ChatTemplate.load(modelDir);
        } catch (IllegalArgumentException e) {
            t = null;
        }
        this.template = t;
        TrainingData data = new TrainingData(tokenizer, template);
        TrainingArguments sftArgs = spec.sft() == null ? null : spec.sft().training();
        TrainingArguments dpoArgs = spec.dpo() == null ? null : spec.dpo().training();
        this.sft = sftArgs == null ? null : stage(spec.seed(), sftArgs, specDir, rows -> data.sft(rows, sftArgs.maxLength()));
        this.dpo = dpoArgs == null ? null
                : stage(spec.seed(), dpoArgs, specDir, rows -> data.preferences(rows, dpoArgs.maxLength(), spec.dpo().maxPromptLength()));
        TrainingArguments ktoArgs = spec.kto() == null ? null : spec.kto().training();
        this.kto = ktoArgs == null ? null : stage(spec.seed(), ktoArgs, specDir, rows -> data.unpaired(rows, ktoArgs.maxLength()));
        String replayDataset = spec.sft() == null ? null : spec.sft().replayDataset();
        this.replay = replayDataset == null ? null : data.sft(TrainingData.readLines(resolve(specDir, replayDataset)), sftArgs.maxLength());
        this.forgetting = spec.forgettingDataset() == null ? null
                : data.sft(TrainingData.readLines(resolve(specDir, spec.forgettingDataset())), (sftArgs != null ? sftArgs : dpoArgs != null ? dpoArgs : ktoArgs).maxLength());
    }

    private static <T> StageData<T> stage(long seed, TrainingArguments s, Path specDir,
                                          java.util.function.Function<List<JsonNode>, TrainingData.Loaded<T>> load) {
        List<JsonNode> rows = TrainingData.readLines(resolve(specDir, s.dataset()));
        List<JsonNode> eval = null;
        if (s.evalDataset() != null) {
            eval = TrainingData.readLines(resolve(specDir, s.evalDataset()));
        } else if (s.evalSplit() > 0) {
            List<JsonNode> shuffled = new ArrayList<>(rows);
            Collections.shuffle(shuffled, new Random(seed));
            int n = Math.max(1, (int) Math.round(shuffled.size() * s.evalSplit()));
            eval = shuffled.subList(shuffled.size() - n, shuffled.size());
            rows = shuffled.subList(0, shuffled.size() - n);
        }
        return new StageData<>(load.apply(rows), eval == null ? null : load.apply(eval));
    }

    static Path resolve(Path specDir, String path) {
        Path p = Path.of(path);
        return p.isAbsolute() || specDir == null ? p : specDir.resolve(p).normalize();
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
