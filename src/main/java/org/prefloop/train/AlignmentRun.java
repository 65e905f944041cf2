package org.prefloop.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.OffHeap;
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
    /** The caller's pre-flight, with the data it read; null: this run checks the spec itself. */
    private final Preflight.Checked checked;

    /** A run of a spec nobody has checked yet: {@link #run} runs the pre-flight first. */
    public AlignmentRun(RunSpec spec, Path specDir, RunListener listener, BooleanSupplier cancelled) {
        this(spec, specDir, null, listener, cancelled);
    }

    /** A run of a spec the caller has checked ({@link Preflight#prepare}); its report and data are used, not made again. */
    public AlignmentRun(Preflight.Checked checked, RunListener listener, BooleanSupplier cancelled) {
        this(checked.spec(), checked.specDir, checked, listener, cancelled);
    }

    private AlignmentRun(RunSpec spec, Path specDir, Preflight.Checked checked, RunListener listener, BooleanSupplier cancelled) {
        this.spec = spec;
        this.specDir = specDir;
        this.checked = checked;
        this.listener = listener;
        this.cancelled = cancelled;
        this.out = PreparedRun.resolve(specDir, spec.outputDir());
    }

    public Path outputDir() {
        return out;
    }

    /** Runs (or resumes) the whole pipeline and returns its summary, also written to summary.json. */
    public Map<String, Object> run() {
        if (checked != null) return run(checked);
        try (Preflight.Checked own = Preflight.prepare(spec, specDir)) {
            return run(own);
        }
    }

    private Map<String, Object> run(Preflight.Checked checked) {
        long start = System.nanoTime();
        PreparedRun prep = checked.run;
        PreflightReport report = checked.report();
        try {
            write(out.resolve("preflight.json"), report.toMap());
            write(out.resolve("spec.json"), spec.toTree());
            if (!report.ok()) throw new PreflightFailedException(report);
            Map<String, Object> summary = new LinkedHashMap<>();
            summary.put("name", spec.name());
            summary.put("base_model", prep.modelDir.toString());
            summary.put("seed", spec.seed());
            Engine.getInstance().setRandomSeed(spec.seed().intValue());
            TrainingAllocator.apply(); // before the load, whose freed buffers would raise glibc's mmap threshold
            try (LlamaModel model = LlamaModel.load(prep.modelDir)) {
                Double forgettingBefore = prep.forgetting == null ? null : SftTrainer.evaluate(model, prep.forgetting.examples(), 8);
                if (spec.sft() != null) summary.put("sft", new SftStage(prep, model).run());
                if (spec.dpo() != null) summary.put("dpo", new DpoStage(prep, model).run());
                if (spec.kto() != null) summary.put("kto", new KtoStage(prep, model).run());
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
        boolean grad = ai.djl.pytorch.jni.JniUtils.isGradMode();
        ai.djl.pytorch.jni.JniUtils.setGradMode(false);
        try (OffHeap memory = OffHeap.open()) {
            Map<String, Safetensors.Tensor> stored = Safetensors.read(safetensors, memory);
            parameters.forEach((k, p) -> {
                Safetensors.Tensor t = stored.get(k);
                if (t == null) throw new IllegalArgumentException(safetensors + " has no tensor " + k);
                p.set(t.toFloatArray());
            });
        } finally {
            ai.djl.pytorch.jni.JniUtils.setGradMode(grad);
        }
    }

    private LoraAdapter newAdapter(LlamaModel model, TrainingArguments s, String base, long seed) {
        LoraAdapter.Config c = new LoraAdapter.Config("LORA", "CAUSAL_LM", s.r(), s.loraAlpha(), s.loraDropout(),
                List.copyOf(s.targetModules()), false, "none", base, false);
        return LoraAdapter.create(model, c, seed, false);
    }

    /** A stage's training, given what it trains (adapter or weights) and its optimizer; returns the stage's summary. */
    @FunctionalInterface
    interface Training {
        Map<String, Object> train(Trainable trainable, AdamW optimizer) throws IOException;
    }

    /** What a stage does after training, with its result applied to the model, before its summary.json marks it finished. */
    @FunctionalInterface
    interface Finish {
        void accept(Map<String, Object> summary) throws IOException;
    }

    /**
     * What SFT and DPO share around their loop: a stage finished earlier is reused (its result
     * applied); otherwise a LoRA adapter on {@code adapterBase} (or the model's own weights) and
     * AdamW are set up, {@code training} runs, the result is saved and applied to the model,
     * {@code finish} adds to the summary, and summary.json marks the stage finished.
     */
    private abstract class Stage<T> extends StageLoop<T> {
        final String name;
        final TrainingArguments args;
        final PreparedRun prep;
        final LlamaModel model;
        final Path stageDir;

        Stage(String name, TrainingArguments args, PreparedRun prep, LlamaModel model) {
            super(name, args, spec.seed(), out, listener, cancelled);
            this.name = name;
            this.args = args;
            this.prep = prep;
            this.model = model;
            this.stageDir = out.resolve(name);
        }

        Map<String, Object> run(Path adapterBase, long adapterSeed, Training training, Finish finish) throws IOException {
            Map<String, Object> summary = finished(stageDir);
            if (summary != null) {
                listener.message(name + ": finished earlier, reusing " + stageDir);
                applyResult(model, stageDir, args);
                return summary;
            }
            LoraAdapter adapter = args.usePeft() ? newAdapter(model, args, adapterBase.toString(), adapterSeed) : null;
            Trainable trainable = adapter != null ? Trainable.lora(adapter) : Trainable.full(model);
            AdamW optimizer = new AdamW(args.adamBeta1(), args.adamBeta2(), args.adamEpsilon(), args.weightDecay());
            model.setGradientCheckpointing(args.gradientCheckpointing());
            try {
                summary = training.train(trainable, optimizer);
                summary.put("method", adapter != null ? "lora" : "full");
                saveResult(model, adapter, trainable, stageDir, summary, prep.modelDir);
            } finally {
                model.setGradientCheckpointing(false);
                if (adapter != null) adapter.close();
                optimizer.close();
            }
            applyResult(model, stageDir, args);
            finish.accept(summary);
            write(stageDir.resolve("summary.json"), summary);
            return summary;
        }
    }

    /** SFT: a LoRA adapter (merged into the model afterwards) or the model's own weights. */
    private final class SftStage extends Stage<SequenceLogProbs.Sequence> {
        SftStage(PreparedRun prep, LlamaModel model) {
            super("sft", spec.sft().training(), prep, model);
        }

        @Override
        int length(SequenceLogProbs.Sequence example) {
            return example.length();
        }

        Map<String, Object> run() throws IOException {
            SftConfig sft = spec.sft();
            return run(prep.modelDir, spec.seed(), (trainable, optimizer) -> {
                List<SequenceLogProbs.Sequence> train = prep.sft.train().examples();
                if (sft.packing()) train = TrainingData.pack(shuffled(train, spec.seed()), args.maxLength());
                List<SequenceLogProbs.Sequence> eval = prep.sft.eval() == null ? null : prep.sft.eval().examples();
                List<SequenceLogProbs.Sequence> replay = prep.replay == null ? List.of() : prep.replay.examples();
                int replayPerBatch = (int) Math.round(sft.replayRatio() * args.perDeviceTrainBatchSize() * args.gradientAccumulationSteps());
                try (SftTrainer trainer = new SftTrainer(model, trainable, optimizer, args.maxGradNorm())) {
                    return loop(train, replay, replayPerBatch, trainable, optimizer,
                            (batch, lr) -> {
                                SftTrainer.Step st = trainer.step(batch, args.gradientAccumulationSteps(), lr);
                                return metrics("loss", st.loss(), "grad_norm", st.gradNorm(), "learning_rate", st.learningRate(),
                                        "tokens_per_second", st.tokensPerSecond(), "num_tokens", st.tokens());
                            },
                            eval == null ? null : () -> metrics("eval_loss", trainer.evaluate(eval, args.perDeviceEvalBatchSize())));
                }
            }, summary -> {
                if ((spec.dpo() != null || spec.kto() != null) && args.usePeft()) {
                    // the DPO (or KTO) adapter is trained on this merged model, so its adapter_config names it as its base
                    saveModel(model, prep.modelDir, stageDir.resolve("model"));
                    summary.put("merged_model", stageDir.resolve("model").toString());
                }
            });
        }
    }

    /** DPO with the model as it stands (the SFT result merged) as reference; a LoRA adapter merged in at the end. */
    private final class DpoStage extends Stage<DpoTrainer.Pair> {
        private DisplacementMonitor monitor;

        DpoStage(PreparedRun prep, LlamaModel model) {
            super("dpo", spec.dpo().training(), prep, model);
        }

        @Override
        int length(DpoTrainer.Pair example) {
            return example.prompt().length + Math.max(example.chosen().length, example.rejected().length);
        }

        Map<String, Object> run() throws IOException {
            DpoConfig dpo = spec.dpo();
            DpoLoss.Objective objective = dpo.objective();
            boolean precompute = (dpo.precomputeRefLogProbs() || !args.usePeft()) && objective.usesReference();
            String reference = !objective.usesReference()
                    ? "none: " + String.join(", ", objective.names()) + " compare the policy's own log-probs"
                    : (spec.sft() != null ? "the SFT result (" + (spec.sft().training().usePeft() ? "adapter merged into " : "full weights from ")
                    + prep.modelDir + ")" : "the base model " + prep.modelDir)
                    + (args.usePeft() ? ", i.e. the policy with the DPO adapter switched off" : ", frozen before DPO")
                    + (precompute ? "; reference log-probs precomputed once" : "; reference log-probs computed each step");
            // the adapter's base is the model it was trained on: the SFT result when there was an SFT stage
            Path base = spec.sft() != null ? out.resolve("sft").resolve("model") : prep.modelDir;
            return run(base, spec.seed() + 1, (trainable, optimizer) -> {
                List<DpoTrainer.Pair> train = prep.dpo.train().examples();
                List<DpoTrainer.Pair> eval = prep.dpo.eval() == null ? null : prep.dpo.eval().examples();
                if (precompute) {
                    listener.message("dpo: precomputing reference log-probs of " + train.size() + " pairs");
                    train = DpoTrainer.withReference(model, train, args.perDeviceEvalBatchSize());
                    if (eval != null) eval = DpoTrainer.withReference(model, eval, args.perDeviceEvalBatchSize());
                }
                List<DpoTrainer.Pair> evalPairs = eval;
                DpoTrainer.Settings settings = new DpoTrainer.Settings(objective, args.maxGradNorm());
                try (DpoTrainer trainer = new DpoTrainer(model, trainable, optimizer, settings)) {
                    if (evalPairs != null) monitor = new DisplacementMonitor(referenceLikelihood(trainer, evalPairs), dpo.displacementThreshold());
                    Map<String, Object> summary = loop(train, List.of(), 0, trainable, optimizer,
                            (batch, lr) -> new LinkedHashMap<>(trainer.step(batch, args.gradientAccumulationSteps(), lr).asTrlMetrics()),
                            evalPairs == null ? null : () -> {
                                Map<String, Double> m = new LinkedHashMap<>();
                                trainer.evaluate(evalPairs, args.perDeviceEvalBatchSize()).asTrlMetrics().forEach((k, v) -> {
                                    if (!k.equals("learning_rate") && !k.equals("grad_norm") && !k.equals("tokens_per_second")) m.put("eval_" + k, v);
                                });
                                m.putAll(monitor.metrics(trainer.chosenLikelihood(evalPairs, args.perDeviceEvalBatchSize(), true)));
                                return m;
                            });
                    if (monitor != null) summary.put("displacement", monitor.summary());
                    summary.put("loss_type", objective.names());
                    summary.put("loss_weights", objective.weights());
                    summary.put("beta", dpo.beta());
                    summary.put("reference_model", reference);
                    return summary;
                }
            }, summary -> {
            });
        }

        @Override
        String afterEvaluation(int step, Map<String, Double> eval) {
            boolean before = monitor.exceeded();
            String warning = monitor.check(step, eval);
            if (warning == null) return null;
            if (!before) listener.message("dpo: warning: " + warning);
            return spec.dpo().stopOnDisplacement() ? warning : null;
        }

        /**
         * The chosen answers' likelihood before DPO, measured once and kept beside the stage, so a
         * resumed run compares against the same numbers (full fine-tuning has moved the weights by then).
         */
        private DpoTrainer.Likelihood referenceLikelihood(DpoTrainer trainer, List<DpoTrainer.Pair> eval) throws IOException {
            Path file = stageDir.resolve("reference_likelihood.json");
            if (Files.exists(file)) return JSON.readValue(file.toFile(), DpoTrainer.Likelihood.class);
            DpoTrainer.Likelihood ref = trainer.chosenLikelihood(eval, args.perDeviceEvalBatchSize(), false);
            write(file, ref);
            return ref;
        }
    }

    /** KTO on unpaired examples with the model as it stands (the SFT result merged) as reference; its LoRA adapter merged in at the end. */
    private final class KtoStage extends Stage<KtoTrainer.Example> {
        KtoStage(PreparedRun prep, LlamaModel model) {
            super("kto", spec.kto().training(), prep, model);
        }

        @Override
        int length(KtoTrainer.Example example) {
            return example.prompt().length + example.completion().length;
        }

        Map<String, Object> run() throws IOException {
            KtoConfig kto = spec.kto();
            KtoLoss.Objective objective = kto.objective();
            Path base = spec.sft() != null ? out.resolve("sft").resolve("model") : prep.modelDir;
            return run(base, spec.seed() + 1, (trainable, optimizer) -> {
                List<KtoTrainer.Example> train = prep.kto.train().examples();
                List<KtoTrainer.Example> eval = prep.kto.eval() == null ? null : prep.kto.eval().examples();
                try (KtoTrainer trainer = new KtoTrainer(model, trainable, optimizer, objective, args.maxGradNorm())) {
                    Map<String, Object> summary = loop(train, List.of(), 0, trainable, optimizer,
                            (batch, lr) -> new LinkedHashMap<>(trainer.step(batch, args.gradientAccumulationSteps(), lr).asTrlMetrics()),
                            eval == null ? null : () -> {
                                Map<String, Double> m = new LinkedHashMap<>();
                                trainer.evaluate(eval, args.perDeviceEvalBatchSize()).asTrlMetrics().forEach((k, v) -> {
                                    if (!k.equals("learning_rate") && !k.equals("grad_norm") && !k.equals("tokens_per_second")) m.put("eval_" + k, v);
                                });
                                return m;
                            });
                    summary.put("loss_type", objective.type().trlName());
                    summary.put("beta", objective.beta());
                    summary.put("desirable_weight", objective.desirableWeight());
                    summary.put("undesirable_weight", objective.undesirableWeight());
                    long up = train.stream().filter(KtoTrainer.Example::label).count();
                    summary.put("desirable_examples", up);
                    summary.put("undesirable_examples", train.size() - up);
                    summary.put("reference_model", (spec.sft() != null ? "the SFT result (adapter merged into " + prep.modelDir + ")"
                            : "the base model " + prep.modelDir) + ", i.e. the policy with the KTO adapter switched off; reference log-probs computed each step");
                    return summary;
                }
            }, summary -> {
            });
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
    private static void applyResult(LlamaModel model, Path stageDir, TrainingArguments s) {
        if (s.usePeft()) {
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
