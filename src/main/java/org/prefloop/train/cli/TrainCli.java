package org.prefloop.train.cli;

import org.prefloop.model.TinyModelRecipe;
import org.prefloop.train.AlignmentRun;
import org.prefloop.train.Preflight;
import org.prefloop.train.PreflightFailedException;
import org.prefloop.train.PreflightReport;
import org.prefloop.train.RunCancelledException;
import org.prefloop.train.RunSpec;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * {@code prefloop train --spec run.yaml}, {@code prefloop preflight --spec run.yaml} and
 * {@code prefloop init-model --recipe tiny-model.json --out DIR}. Exit codes: 0 done, 1 the run
 * failed, 2 bad input (one line naming the problem), 130 interrupted.
 */
public final class TrainCli {
    public static final List<String> COMMANDS = List.of("train", "preflight", "init-model");
    static final String USAGE = """
            usage: prefloop train --spec run.yaml        run (or resume) SFT then DPO as the spec says
                   prefloop preflight --spec run.yaml    check the spec and its data, estimate memory; train nothing
                   prefloop init-model --recipe tiny-model.json --out DIR   write a randomly initialised tiny model""";

    private TrainCli() {
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        try {
            Map<String, String> opts = options(args);
            return switch (args[0]) {
                case "preflight" -> preflight(specPath(opts), out);
                case "train" -> train(specPath(opts), out, err);
                case "init-model" -> initModel(opts, out);
                default -> usage(err);
            };
        } catch (PreflightFailedException e) {
            err.print(e.report().render());
            err.println("prefloop: the run did not start: pre-flight checks failed");
            return 2;
        } catch (IllegalArgumentException e) {
            err.println("prefloop: " + e.getMessage());
            return 2;
        } catch (RunCancelledException e) {
            err.println("\nprefloop: " + e.getMessage() + "; run the same command again to resume from the latest checkpoint");
            return 130;
        } catch (RuntimeException e) {
            err.println("\nprefloop: the run failed: " + e.getMessage());
            return 1;
        }
    }

    private static int usage(PrintStream err) {
        err.println(USAGE);
        return 2;
    }

    private static Map<String, String> options(String[] args) {
        Map<String, String> opts = new java.util.HashMap<>();
        for (int i = 1; i < args.length; i++) {
            if (!args[i].startsWith("--")) throw new IllegalArgumentException("unexpected argument '" + args[i] + "'\n" + USAGE);
            if (i + 1 >= args.length) throw new IllegalArgumentException(args[i] + " needs a value");
            opts.put(args[i].substring(2), args[++i]);
        }
        return opts;
    }

    private static Path specPath(Map<String, String> opts) {
        String spec = opts.get("spec");
        if (spec == null) throw new IllegalArgumentException("--spec is required\n" + USAGE);
        Path p = Path.of(spec);
        if (!Files.isRegularFile(p)) throw new IllegalArgumentException("no run spec at " + p);
        return p;
    }

    private static int preflight(Path specFile, PrintStream out) {
        PreflightReport report = Preflight.check(RunSpec.read(specFile), specFile.toAbsolutePath().getParent());
        out.print(report.render());
        return report.ok() ? 0 : 2;
    }

    private static int train(Path specFile, PrintStream out, PrintStream err) {
        RunSpec spec = RunSpec.read(specFile);
        AtomicBoolean interrupted = new AtomicBoolean();
        Thread main = Thread.currentThread();
        Thread hook = new Thread(() -> {
            interrupted.set(true);
            try {
                main.join(60_000);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        });
        Runtime.getRuntime().addShutdownHook(hook);
        ProgressLine progress = new ProgressLine(err, System.console() != null);
        AlignmentRun run = new AlignmentRun(spec, specFile.toAbsolutePath().getParent(), progress, interrupted::get);
        Map<String, Object> summary = run.run();
        progress.finish();
        Runtime.getRuntime().removeShutdownHook(hook);
        out.println("done: " + run.outputDir().resolve("summary.json"));
        out.println("aligned model: " + summary.get("model"));
        if (summary.get("forgetting") instanceof Map<?, ?> f) {
            out.printf("forgetting (loss on the general set): %.4f -> %.4f (%+.1f%%)%n", f.get("loss_before"), f.get("loss_after"),
                    100 * ((Number) f.get("relative_change")).doubleValue());
        }
        return 0;
    }

    private static int initModel(Map<String, String> opts, PrintStream out) {
        String recipe = opts.getOrDefault("recipe", "preference-data/synthetic/tiny-model.json");
        String dir = opts.get("out");
        if (dir == null) throw new IllegalArgumentException("--out is required\n" + USAGE);
        Path written = TinyModelRecipe.read(Path.of(recipe)).write(Path.of(dir));
        out.println("wrote a randomly initialised model to " + written);
        return 0;
    }
}
