package org.prefloop.train;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The checks that the fine-tuning literature says catch most failed runs, done before any
 * weight is loaded: too little data, a learning rate outside the usual range for the method,
 * too many epochs on small data, examples the chat template cannot render or that exceed
 * max_length, validation examples that also appear in the training data (exactly or nearly),
 * and the memory the stage will need.
 */
public final class Preflight {
    static final int MIN_EXAMPLES = 100;
    static final double NEAR_DUPLICATE_JACCARD = 0.8;
    private static final int SHINGLE = 5;

    private Preflight() {
    }

    /** Reads what the spec names (no weights) and checks it. A spec that cannot be read at all is an IllegalArgumentException. */
    public static PreflightReport check(RunSpec spec, Path specDir) {
        try (Checked checked = prepare(spec, specDir)) {
            return checked.report();
        }
    }

    /** As {@link #check(RunSpec, Path)}, against {@code available} bytes for the DJL executor (0: unknown, no memory check). */
    static PreflightReport check(RunSpec spec, Path specDir, long available) {
        try (PreparedRun run = new PreparedRun(spec, specDir)) {
            return check(run, available);
        }
    }

    /** Reads what the spec names and checks it, keeping what was read for the run ({@link AlignmentRun} does not check again). */
    public static Checked prepare(RunSpec spec, Path specDir) {
        PreparedRun run = new PreparedRun(spec, specDir);
        try {
            return new Checked(run, specDir, check(run));
        } catch (RuntimeException e) {
            run.close();
            throw e;
        }
    }

    /** A spec with its data read and its pre-flight report; closing it frees the tokenizer. */
    public static final class Checked implements AutoCloseable {
        final PreparedRun run;
        final Path specDir;
        private final PreflightReport report;

        private Checked(PreparedRun run, Path specDir, PreflightReport report) {
            this.run = run;
            this.specDir = specDir;
            this.report = report;
        }

        public PreflightReport report() {
            return report;
        }

        public RunSpec spec() {
            return run.spec;
        }

        @Override
        public void close() {
            run.close();
        }
    }

    static PreflightReport check(PreparedRun run) {
        return check(run, availableMemory());
    }

    static PreflightReport check(PreparedRun run, long available) {
        PreflightReport report = new PreflightReport();
        RunSpec spec = run.spec;
        report.fact("model", run.modelDir.toString());
        report.fact("model parameters", MemoryEstimate.parameters(run.config));
        if (!spec.ignoredSettings().isEmpty()) {
            report.warn("settings", "accepted from TRL but without effect here: " + String.join(", ", spec.ignoredSettings()));
        }
        halfPrecision(report, spec);
        if (run.sft != null) stage(report, "sft", spec.sft().training(), run.sft, run, available);
        if (run.dpo != null) stage(report, "dpo", spec.dpo().training(), run.dpo, run, available);
        if (run.kto != null) {
            stage(report, "kto", spec.kto().training(), run.kto, run, available);
            ktoBalance(report, spec.kto(), run.kto.train().examples());
        }
        if (run.replay != null && run.replay.examples().isEmpty()) report.error("sft.replay", "the replay dataset has no usable example");
        if (run.forgetting != null) report.fact("forgetting examples", run.forgetting.examples().size());
        return report;
    }

    /**
     * {@code bf16}/{@code fp16: true} ask for half-precision training, which the DJL executor does
     * not do (it trains in float32, and DJL 0.36's engine aborts the JVM on a bfloat16 array): the
     * run is refused rather than silently trained in float32. The TRL executor applies both as given.
     */
    static void halfPrecision(PreflightReport report, RunSpec spec) {
        if (spec.executor() != null && !spec.executor().equals("djl")) return;
        for (String stage : List.of("sft", "dpo", "kto")) {
            for (String key : List.of("bf16", "fp16")) {
                var value = spec.trlOnly(stage).get(key);
                if (value == null || !value.asBoolean(false)) continue;
                report.error(stage + "." + key, key + ": true asks for half precision, which the DJL executor does not train in (float32 only"
                        + (key.equals("bf16") ? "; DJL 0.36's PyTorch engine aborts on bfloat16 arrays" : "")
                        + "): remove it, or run the spec through TRL with executor: trl");
            }
        }
    }

    private static <T> void stage(PreflightReport report, String name, TrainingArguments s, PreparedRun.StageData<T> data, PreparedRun run, long available) {
        TrainingData.Loaded<T> train = data.train();
        int n = train.examples().size();
        report.fact(name + " examples", n);
        if (n == 0) {
            report.error(name + ".dataset", "no usable example in " + s.dataset() + (train.problems().isEmpty() ? "" : " (" + train.problems().get(0) + ")"));
        } else if (n < MIN_EXAMPLES) {
            report.warn(name + ".dataset", n + " examples; fewer than " + MIN_EXAMPLES + " rarely teach anything reliably");
        }
        if (train.unrenderable() > 0) {
            report.warn(name + ".format", train.unrenderable() + " examples cannot be used and will be left out, e.g. " + train.problems().get(0));
        }
        if (train.truncated() > 0) {
            report.warn(name + ".max_length", train.truncated() + " of " + n + " examples exceed max_length " + s.maxLength() + " and will be truncated");
        }
        boolean lora = s.usePeft();
        double lo = lora ? 1e-4 : 1e-5, hi = lora ? 3e-4 : 5e-5;
        if (s.learningRate() < lo / 2 || s.learningRate() > hi * 2) {
            report.warn(name + ".learning_rate", String.format(Locale.ROOT, "%.1e is outside the usual range for %s (about %.0e..%.0e)",
                    s.learningRate(), lora ? "LoRA" : "full fine-tuning", lo, hi));
        }
        if (s.numTrainEpochs() > 3 && n < 10_000) {
            report.warn(name + ".num_train_epochs", String.format(Locale.ROOT, "%.0f epochs over %d examples invites overfitting (3 or fewer is the usual advice)", s.numTrainEpochs(), n));
        }
        if (data.eval() != null) {
            report.fact(name + " eval examples", data.eval().examples().size());
            int[] overlap = contamination(train.texts(), data.eval().texts());
            if (overlap[0] + overlap[1] > 0) {
                report.warn(name + ".contamination", overlap[0] + " evaluation examples also appear in the training data exactly, "
                        + overlap[1] + " nearly (character 5-gram Jaccard >= " + NEAR_DUPLICATE_JACCARD + ")");
            }
        }
        int maxLen = train.examples().isEmpty() ? s.maxLength() : Math.min(s.maxLength(), maxTokens(train.examples()));
        int microBatch = s.perDeviceTrainBatchSize(); // TRL's meaning: the micro-batch; accumulation repeats it
        long trainable = lora ? MemoryEstimate.loraParameters(run.config, s.r(), s.targetModules()) : MemoryEstimate.parameters(run.config);
        int sequences = name.equals("dpo") ? 2 * microBatch : microBatch;
        MemoryEstimate m = MemoryEstimate.of(run.config, trainable, sequences, maxLen, s.gradientCheckpointing());
        report.fact(name + " trainable parameters", trainable);
        report.fact(name + " memory", String.format("%s total: weights %s, gradients %s, optimizer %s, activations %s (micro-batch %d x %d tokens%s)",
                MemoryEstimate.gib(m.total()), MemoryEstimate.gib(m.weights()), MemoryEstimate.gib(m.gradients()),
                MemoryEstimate.gib(m.optimizer()), MemoryEstimate.gib(m.activations()), sequences, maxLen,
                s.gradientCheckpointing() ? ", gradient checkpointing" : ""));
        Accelerate a = run.spec.accelerate();
        if (a != null) {
            MemoryEstimate share = m.perProcess(a.config, a.numProcesses);
            report.fact(name + " memory per process", String.format("%s with accelerate %s over %d process(es) on %d machine(s): weights %s, gradients %s, optimizer %s",
                    MemoryEstimate.gib(share.total()), a.config, a.numProcesses, a.numMachines, MemoryEstimate.gib(share.weights()),
                    MemoryEstimate.gib(share.gradients()), MemoryEstimate.gib(share.optimizer())));
        }
        // only the DJL executor trains in this process; trl and kubeflow runs are sized by their accelerate section
        boolean here = run.spec.executor() == null || run.spec.executor().equals("djl");
        if (here && available > 0 && m.total() > available) {
            report.error(name + ".memory", "needs about " + MemoryEstimate.gib(m.total()) + " but " + MemoryEstimate.gib(available)
                    + " is available; lower per_device_train_batch_size (raise gradient_accumulation_steps) or max_length, set gradient_checkpointing, or use LoRA"
                    + distributedProposal(m, available));
        }
    }

    /** The smallest sharded set-up whose share fits the same memory per device, as spec text the user can paste. */
    static String distributedProposal(MemoryEstimate m, long perDevice) {
        for (int n = 2; n <= 256; n *= 2) {
            MemoryEstimate share = m.perProcess("fsdp", n);
            if (share.total() <= perDevice) {
                return String.format("; or shard it over %d GPUs with the TRL executor: executor: trl (one machine) or kubeflow (a TrainJob), "
                        + "accelerate: {config: fsdp, num_processes: %d} (about %s per GPU; deepspeed_zero3 divides the same way)",
                        n, n, MemoryEstimate.gib(share.total()));
            }
        }
        return "; even sharded over 256 GPUs its activations alone exceed that: shorten max_length or the micro-batch";
    }

    /**
     * TRL's advice for KTO: the desirable examples' total weight should be 1 to 4/3 times the
     * undesirable ones' ({@code desirable_weight x #desirable / (undesirable_weight x #undesirable)}).
     */
    private static void ktoBalance(PreflightReport report, KtoConfig s, List<KtoTrainer.Example> examples) {
        long up = examples.stream().filter(KtoTrainer.Example::label).count();
        long down = examples.size() - up;
        report.fact("kto desirable / undesirable", up + " / " + down);
        if (up == 0 || down == 0) {
            report.warn("kto.dataset", "every example is " + (up == 0 ? "undesirable" : "desirable") + "; KTO learns best from both");
            return;
        }
        KtoLoss.Objective o = s.objective();
        double ratio = o.desirableWeight() * up / (o.undesirableWeight() * down);
        if (ratio < 1 || ratio > 4.0 / 3) {
            report.warn("kto.desirable_weight", String.format(Locale.ROOT,
                    "desirable_weight x %d / (undesirable_weight x %d) is %.2f; TRL advises 1 to 1.33 (set desirable_weight or undesirable_weight to balance)",
                    up, down, ratio));
        }
    }

    private static int maxTokens(List<?> examples) {
        int max = 0;
        for (Object e : examples) {
            if (e instanceof SequenceLogProbs.Sequence s) max = Math.max(max, s.length());
            if (e instanceof KtoTrainer.Example k) max = Math.max(max, k.tokens());
            if (e instanceof DpoTrainer.Pair p) max = Math.max(max, p.prompt().length + Math.max(p.chosen().length, p.rejected().length));
        }
        return max;
    }

    /** {exact, near} counts of evaluation texts that also occur in the training texts. */
    static int[] contamination(List<String> train, List<String> eval) {
        Set<String> exact = new HashSet<>();
        for (String t : train) exact.add(normalize(t));
        // inverted index from shingle to training examples, to compare only texts that share something
        Map<Integer, List<Integer>> index = new HashMap<>();
        List<Set<Integer>> trainShingles = train.stream().map(Preflight::shingles).toList();
        for (int i = 0; i < trainShingles.size(); i++) {
            for (int h : trainShingles.get(i)) index.computeIfAbsent(h, k -> new java.util.ArrayList<>()).add(i);
        }
        int exactHits = 0, nearHits = 0;
        for (String e : eval) {
            if (exact.contains(normalize(e))) {
                exactHits++;
                continue;
            }
            Set<Integer> s = shingles(e);
            Map<Integer, Integer> shared = new HashMap<>();
            for (int h : s) {
                List<Integer> hits = index.get(h);
                if (hits == null || hits.size() > 1000) continue; // too common to tell anything
                for (int i : hits) shared.merge(i, 1, Integer::sum);
            }
            for (Map.Entry<Integer, Integer> c : shared.entrySet()) {
                int union = s.size() + trainShingles.get(c.getKey()).size() - c.getValue();
                if (union > 0 && (double) c.getValue() / union >= NEAR_DUPLICATE_JACCARD) {
                    nearHits++;
                    break;
                }
            }
        }
        return new int[]{exactHits, nearHits};
    }

    private static String normalize(String s) {
        return s.toLowerCase(Locale.ROOT).replaceAll("\\s+", " ").strip();
    }

    private static Set<Integer> shingles(String text) {
        String s = normalize(text);
        Set<Integer> out = new HashSet<>();
        for (int i = 0; i + SHINGLE <= s.length(); i++) out.add(s.substring(i, i + SHINGLE).hashCode());
        if (out.isEmpty()) out.add(s.hashCode());
        return out;
    }

    /** MemAvailable from /proc/meminfo (0 when unknown). */
    static long availableMemory() {
        try {
            for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        } catch (Exception e) {
            return 0;
        }
        return 0;
    }
}
