package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.Safetensors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

/**
 * One alignment run: pre-flight checks, then an SFT stage, then a DPO stage whose reference is
 * the SFT result merged into the base (the DPO adapter switched off), then the aligned model
 * written as a full Hugging Face checkpoint. Every stage writes its metrics (JSON Lines, TRL's
 * names), its adapter (PEFT layout) or weights, and a summary under {@code output_dir}; a killed
 * run started again with the same spec continues from the latest checkpoint and skips finished
 * stages.
 *
 * <pre>
 * output_dir/preflight.json, spec.json, summary.json
 *           sft/metrics.jsonl, sft/adapter/, sft/summary.json
 *           sft/model/        the SFT result as a full checkpoint (full fine-tuning, or LoRA merged when DPO follows)
 *           dpo/metrics.jsonl, dpo/adapter/ (its base_model_name_or_path: sft/model/ when there was SFT), dpo/summary.json
 *           model/            the aligned model: config.json, model.safetensors, tokenizer files
 *           checkpoints/      the latest checkpoint of the stage in progress
 * </pre>
 */
public final class AlignmentRun {
    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "generation_config.json", "chat_template.jinja");

    private final RunSpec spec;
    private final Path specDir;
    private final RunListener listener;
    private final BooleanSupplier cancelled;
    private final Path out;

    public AlignmentRun(RunSpec spec, Path specDir, RunListener listener, BooleanSupplier cancelled) {
        this.spec = spec;
        this.specDir = specDir;
        this.listener = listener;
        this.cancelled = cancelled;
        this.out = PreparedRun.resolve(specDir, spec.outputDir);
    }

    public Path outputDir() {
        return out;
    }

    /** Runs (or resumes) the whole pipeline and returns its summary, also written to summary.json. */
    public Map<String, Object> run() {
        long start = System.nanoTime();
        try (PreparedRun prep = new PreparedRun(spec, specDir)) {
            PreflightReport report = Preflight.check(prep);
            write(out.resolve("preflight.json"), report.toMap());
            write(out.resolve("spec.json"), JSON.readTree(spec.toJson()));
            if (!report.ok()) throw new PreflightFailedException(report);
            Map<String, Object> summary = new LinkedHashMap<>();
            summary.put("name", spec.name);
            summary.put("base_model", prep.modelDir.toString());
            summary.put("seed", spec.seed);
            Engine.getInstance().setRandomSeed((int) spec.seed);
            try (LlamaModel model = LlamaModel.load(prep.modelDir)) {
                Double forgettingBefore = prep.forgetting == null ? null : SftTrainer.evaluate(model, prep.forgetting.examples(), 8);
                if (spec.sft != null) summary.put("sft", new SftStage(prep, model).run());
                if (spec.dpo != null) summary.put("dpo", new DpoStage(prep, model).run());
                if (spec.kto != null) summary.put("kto", new KtoStage(prep, model).run());
                Path modelOut = out.resolve("model");
                saveModel(model, prep.modelDir, modelOut);
                summary.put("model", modelOut.toString());
                if (forgettingBefore != null) {
                    double after = SftTrainer.evaluate(model, prep.forgetting.examples(), 8);
                    summary.put("forgetting", forgetting(forgettingBefore, after, prep.forgetting.examples().size()));
                }
            }
            List<String> warnings = qualityWarnings(summary);
            if (!warnings.isEmpty()) {
                summary.put("warnings", warnings);
                warnings.forEach(w -> listener.message("warning: " + w));
            }
            summary.put("seconds", (System.nanoTime() - start) / 1e9);
            summary.put("status", "succeeded");
            write(out.resolve("summary.json"), summary);
            return summary;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Plain sentences for the summary when held-out quality fell: likelihood displacement, or general text got harder. */
    static List<String> qualityWarnings(Map<String, Object> summary) {
        List<String> out = new ArrayList<>();
        if (summary.get("dpo") instanceof Map<?, ?> dpo && dpo.get("displacement") instanceof Map<?, ?> d && Boolean.TRUE.equals(d.get("exceeded"))) {
            out.add(String.format(java.util.Locale.ROOT, "DPO made the held-out chosen answers less likely (by up to %.3f nats per token, "
                            + "%.3f at the end token): held-out quality probably fell below the SFT model's (likelihood displacement)",
                    ((Number) d.get("largest_fall/chosen_per_token")).doubleValue(), ((Number) d.get("largest_fall/chosen_end")).doubleValue()));
        }
        if (summary.get("forgetting") instanceof Map<?, ?> f && ((Number) f.get("relative_change")).doubleValue() > FORGETTING_WARNING) {
            out.add(String.format(java.util.Locale.ROOT, "loss on the general held-out set rose by %.0f%% (forgetting)",
                    100 * ((Number) f.get("relative_change")).doubleValue()));
        }
        return out;
    }

    /** A rise of the general held-out loss past this share is reported as forgetting. */
    static final double FORGETTING_WARNING = 0.10;

    /** The alignment tax: mean NLL per token on general held-out text before and after the run. */
    static Map<String, Object> forgetting(double before, double after, int examples) {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("examples", examples);
        f.put("loss_before", before);
        f.put("loss_after", after);
        f.put("change", after - before);
        f.put("relative_change", (after - before) / before);
        return f;
    }

    /** Writes the model's weights, config and the base's tokenizer files: a checkpoint anything can load. */
    static void saveModel(LlamaModel model, Path baseDir, Path dir) throws IOException {
        model.save(dir);
        for (String f : TOKENIZER_FILES) {
            if (Files.exists(baseDir.resolve(f))) Files.copy(baseDir.resolve(f), dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
    }

    static void write(Path file, Object value) throws IOException {
        Files.createDirectories(file.getParent());
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        JSON.writeValue(tmp.toFile(), value);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** Copies stored tensors into live parameters of the same names (gradient mode off). */
    static void copyInto(Map<String, NDArray> parameters, Path safetensors) {
        Map<String, Safetensors.Tensor> stored = Safetensors.read(safetensors);
        boolean grad = ai.djl.pytorch.jni.JniUtils.isGradMode();
        ai.djl.pytorch.jni.JniUtils.setGradMode(false);
        try {
            parameters.forEach((k, p) -> {
                Safetensors.Tensor t = stored.get(k);
                if (t == null) throw new IllegalArgumentException(safetensors + " has no tensor " + k);
                p.set(t.toFloatArray());
            });
        } finally {
            ai.djl.pytorch.jni.JniUtils.setGradMode(grad);
        }
    }

    private LoraAdapter newAdapter(LlamaModel model, RunSpec.Stage s, String base, long seed) {
        LoraAdapter.Config c = new LoraAdapter.Config("LORA", "CAUSAL_LM", s.r, s.loraAlpha, s.loraDropout == null ? 0 : s.loraDropout,
                List.copyOf(s.targetModules), false, "none", base, false);
        return LoraAdapter.create(model, c, seed, false);
    }

    /** SFT: a LoRA adapter (merged into the model afterwards) or the model's own weights. */
    private final class SftStage extends StageLoop<SequenceLogProbs.Sequence> {
        private final PreparedRun prep;
        private final LlamaModel model;

        SftStage(PreparedRun prep, LlamaModel model) {
            super("sft", spec.sft, spec.seed, out, listener, cancelled);
            this.prep = prep;
            this.model = model;
        }

        Map<String, Object> run() throws IOException {
            RunSpec.Stage s = spec.sft;
            Path stageDir = out.resolve("sft");
            Map<String, Object> summary = finished(stageDir);
            if (summary != null) {
                listener.message("sft: finished earlier, reusing " + stageDir);
                applyResult(model, stageDir, s);
                return summary;
            }
            List<SequenceLogProbs.Sequence> train = prep.sft.train().examples();
            if (s.packing) train = TrainingData.pack(shuffled(train, spec.seed), s.maxLength);
            List<SequenceLogProbs.Sequence> eval = prep.sft.eval() == null ? null : prep.sft.eval().examples();
            List<SequenceLogProbs.Sequence> replay = prep.replay == null ? List.of() : prep.replay.examples();
            int replayPerBatch = (int) Math.round(s.replayRatio * s.batchSize * s.gradientAccumulationSteps);
            LoraAdapter adapter = s.usePeft ? newAdapter(model, s, prep.modelDir.toString(), spec.seed) : null;
            Trainable trainable = adapter != null ? Trainable.lora(adapter) : Trainable.full(model);
            AdamW optimizer = new AdamW(s.adamBeta1, s.adamBeta2, s.adamEpsilon, s.weightDecay);
            try (SftTrainer trainer = new SftTrainer(model, trainable, optimizer, s.maxGradNorm)) {
                summary = loop(train, replay, replayPerBatch, trainable, optimizer,
                        (batch, lr) -> {
                            SftTrainer.Step st = trainer.step(batch, s.gradientAccumulationSteps, lr);
                            return metrics("loss", st.loss(), "grad_norm", st.gradNorm(), "learning_rate", st.learningRate(),
                                    "tokens_per_second", st.tokensPerSecond(), "num_tokens", st.tokens());
                        },
                        eval == null ? null : () -> metrics("eval_loss", trainer.evaluate(eval, s.evalBatchSize)));
                summary.put("method", adapter != null ? "lora" : "full");
                saveResult(model, adapter, trainable, stageDir, summary, prep.modelDir);
            } finally {
                if (adapter != null) adapter.close();
                optimizer.close();
            }
            applyResult(model, stageDir, s);
            if ((spec.dpo != null || spec.kto != null) && s.usePeft) {
                // the DPO (KTO) adapter is trained on this merged model, so its adapter_config names it as its base
                saveModel(model, prep.modelDir, stageDir.resolve("model"));
                summary.put("merged_model", stageDir.resolve("model").toString());
            }
            write(stageDir.resolve("summary.json"), summary);
            return summary;
        }
    }

    /** DPO with the model as it stands (the SFT result merged) as reference; a LoRA adapter merged in at the end. */
    private final class DpoStage extends StageLoop<DpoTrainer.Pair> {
        private final PreparedRun prep;
        private final LlamaModel model;
        private DisplacementMonitor monitor;

        DpoStage(PreparedRun prep, LlamaModel model) {
            super("dpo", spec.dpo, spec.seed, out, listener, cancelled);
            this.prep = prep;
            this.model = model;
        }

        Map<String, Object> run() throws IOException {
            RunSpec.Stage s = spec.dpo;
            Path stageDir = out.resolve("dpo");
            Map<String, Object> summary = finished(stageDir);
            if (summary != null) {
                listener.message("dpo: finished earlier, reusing " + stageDir);
                applyResult(model, stageDir, s);
                return summary;
            }
            DpoLoss.Objective objective = s.objective();
            boolean precompute = (s.precomputeRefLogProbs || !s.usePeft) && objective.usesReference();
            List<DpoTrainer.Pair> train = prep.dpo.train().examples();
            List<DpoTrainer.Pair> eval = prep.dpo.eval() == null ? null : prep.dpo.eval().examples();
            if (precompute) {
                listener.message("dpo: precomputing reference log-probs of " + train.size() + " pairs");
                train = DpoTrainer.withReference(model, train, s.evalBatchSize);
                if (eval != null) eval = DpoTrainer.withReference(model, eval, s.evalBatchSize);
            }
            String reference = !objective.usesReference()
                    ? "none: " + String.join(", ", objective.names()) + " compare the policy's own log-probs"
                    : (spec.sft != null ? "the SFT result (" + (spec.sft.usePeft ? "adapter merged into " : "full weights from ")
                    + prep.modelDir + ")" : "the base model " + prep.modelDir)
                    + (s.usePeft ? ", i.e. the policy with the DPO adapter switched off" : ", frozen before DPO")
                    + (precompute ? "; reference log-probs precomputed once" : "; reference log-probs computed each step");
            // the adapter's base is the model it was trained on: the SFT result when there was an SFT stage
            Path base = spec.sft != null ? out.resolve("sft").resolve("model") : prep.modelDir;
            LoraAdapter adapter = s.usePeft ? newAdapter(model, s, base.toString(), spec.seed + 1) : null;
            Trainable trainable = adapter != null ? Trainable.lora(adapter) : Trainable.full(model);
            AdamW optimizer = new AdamW(s.adamBeta1, s.adamBeta2, s.adamEpsilon, s.weightDecay);
            DpoTrainer.Settings settings = new DpoTrainer.Settings(objective, s.maxGradNorm);
            List<DpoTrainer.Pair> evalPairs = eval;
            try (DpoTrainer trainer = new DpoTrainer(model, trainable, optimizer, settings)) {
                if (evalPairs != null) monitor = new DisplacementMonitor(referenceLikelihood(trainer, evalPairs, stageDir), s.displacementThreshold);
                summary = loop(train, List.of(), 0, trainable, optimizer,
                        (batch, lr) -> new LinkedHashMap<>(trainer.step(batch, s.gradientAccumulationSteps, lr).asTrlMetrics()),
                        evalPairs == null ? null : () -> {
                            Map<String, Double> m = new LinkedHashMap<>();
                            trainer.evaluate(evalPairs, s.evalBatchSize).asTrlMetrics().forEach((k, v) -> {
                                if (!k.equals("learning_rate") && !k.equals("grad_norm") && !k.equals("tokens_per_second")) m.put("eval_" + k, v);
                            });
                            m.putAll(monitor.metrics(trainer.chosenLikelihood(evalPairs, s.evalBatchSize, true)));
                            return m;
                        });
                if (monitor != null) summary.put("displacement", monitor.summary());
                summary.put("method", adapter != null ? "lora" : "full");
                summary.put("loss_type", objective.names());
                summary.put("loss_weights", objective.weights());
                summary.put("beta", s.beta);
                summary.put("reference_model", reference);
                saveResult(model, adapter, trainable, stageDir, summary, prep.modelDir);
            } finally {
                if (adapter != null) adapter.close();
                optimizer.close();
            }
            write(stageDir.resolve("summary.json"), summary);
            applyResult(model, stageDir, s);
            return summary;
        }

        @Override
        String afterEvaluation(int step, Map<String, Double> eval) {
            boolean before = monitor.exceeded();
            String warning = monitor.check(step, eval);
            if (warning == null) return null;
            if (!before) listener.message("dpo: warning: " + warning);
            return spec.dpo.stopOnDisplacement ? warning : null;
        }

        /**
         * The chosen answers' likelihood before DPO, measured once and kept beside the stage, so a
         * resumed run compares against the same numbers (full fine-tuning has moved the weights by then).
         */
        private DpoTrainer.Likelihood referenceLikelihood(DpoTrainer trainer, List<DpoTrainer.Pair> eval, Path stageDir) throws IOException {
            Path file = stageDir.resolve("reference_likelihood.json");
            if (Files.exists(file)) return JSON.readValue(file.toFile(), DpoTrainer.Likelihood.class);
            DpoTrainer.Likelihood ref = trainer.chosenLikelihood(eval, spec.dpo.evalBatchSize, false);
            write(file, ref);
            return ref;
        }
    }

    /** KTO on unpaired examples with the model as it stands (the SFT result merged) as reference; its LoRA adapter merged in at the end. */
    private final class KtoStage extends StageLoop<KtoTrainer.Example> {
        private final PreparedRun prep;
        private final LlamaModel model;

        KtoStage(PreparedRun prep, LlamaModel model) {
            super("kto", spec.kto, spec.seed, out, listener, cancelled);
            this.prep = prep;
            this.model = model;
        }

        Map<String, Object> run() throws IOException {
            RunSpec.Stage s = spec.kto;
            Path stageDir = out.resolve("kto");
            Map<String, Object> summary = finished(stageDir);
            if (summary != null) {
                listener.message("kto: finished earlier, reusing " + stageDir);
                applyResult(model, stageDir, s);
                return summary;
            }
            KtoLoss.Objective objective = s.ktoObjective();
            List<KtoTrainer.Example> train = prep.kto.train().examples();
            List<KtoTrainer.Example> eval = prep.kto.eval() == null ? null : prep.kto.eval().examples();
            Path base = spec.sft != null ? out.resolve("sft").resolve("model") : prep.modelDir;
            LoraAdapter adapter = newAdapter(model, s, base.toString(), spec.seed + 1);
            Trainable trainable = Trainable.lora(adapter);
            AdamW optimizer = new AdamW(s.adamBeta1, s.adamBeta2, s.adamEpsilon, s.weightDecay);
            try (KtoTrainer trainer = new KtoTrainer(model, trainable, optimizer, objective, s.maxGradNorm)) {
                summary = loop(train, List.of(), 0, trainable, optimizer,
                        (batch, lr) -> new LinkedHashMap<>(trainer.step(batch, s.gradientAccumulationSteps, lr).asTrlMetrics()),
                        eval == null ? null : () -> {
                            Map<String, Double> m = new LinkedHashMap<>();
                            trainer.evaluate(eval, s.evalBatchSize).asTrlMetrics().forEach((k, v) -> {
                                if (!k.equals("learning_rate") && !k.equals("grad_norm") && !k.equals("tokens_per_second")) m.put("eval_" + k, v);
                            });
                            return m;
                        });
                summary.put("method", "lora");
                summary.put("loss_type", objective.type().trlName());
                summary.put("beta", objective.beta());
                summary.put("desirable_weight", objective.desirableWeight());
                summary.put("undesirable_weight", objective.undesirableWeight());
                long up = train.stream().filter(KtoTrainer.Example::label).count();
                summary.put("desirable_examples", up);
                summary.put("undesirable_examples", train.size() - up);
                summary.put("reference_model", (spec.sft != null ? "the SFT result (adapter merged into " + prep.modelDir + ")" : "the base model " + prep.modelDir)
                        + ", i.e. the policy with the KTO adapter switched off; reference log-probs computed each step");
                saveResult(model, adapter, trainable, stageDir, summary, prep.modelDir);
            } finally {
                adapter.close();
                optimizer.close();
            }
            write(stageDir.resolve("summary.json"), summary);
            applyResult(model, stageDir, s);
            return summary;
        }
    }

    /** Writes what a stage trained (the adapter, or the full weights) and leaves the model plain: no hook, no gradients. */
    private static void saveResult(LlamaModel model, LoraAdapter adapter, Trainable trainable, Path stageDir, Map<String, Object> summary,
                                   Path baseDir) throws IOException {
        summary.put("trainable_parameters", trainable.parameterCount());
        if (adapter != null) {
            adapter.save(stageDir.resolve("adapter"));
            summary.put("adapter", stageDir.resolve("adapter").toString());
        } else {
            saveModel(model, baseDir, stageDir.resolve("model"));
            summary.put("weights", stageDir.resolve("model").toString());
        }
        model.setProjectionHook(null);
        model.parameters().values().forEach(p -> p.setRequiresGradient(false));
    }

    /** Leaves the model as a finished stage made it: its adapter merged in, or its full weights loaded. */
    private static void applyResult(LlamaModel model, Path stageDir, RunSpec.Stage s) {
        if (s.usePeft) {
            try (LoraAdapter a = LoraAdapter.load(stageDir.resolve("adapter"), model)) {
                a.mergeInto(model);
            }
        } else {
            copyInto(model.parameters(), stageDir.resolve("model").resolve("model.safetensors"));
        }
    }

    static Map<String, Double> metrics(Object... kv) {
        Map<String, Double> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], ((Number) kv[i + 1]).doubleValue());
        return m;
    }

    static <T> List<T> shuffled(List<T> items, long seed) {
        List<T> copy = new ArrayList<>(items);
        java.util.Collections.shuffle(copy, new java.util.Random(seed));
        return copy;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> finished(Path stageDir) throws IOException {
        Path f = stageDir.resolve("summary.json");
        return Files.exists(f) ? JSON.readValue(f.toFile(), LinkedHashMap.class) : null;
    }
}
