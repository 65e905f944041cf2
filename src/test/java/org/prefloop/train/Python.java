package org.prefloop.train;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** python3 with the Hugging Face stack (torch on CPU, transformers, PEFT, TRL), as the tests drive it. */
public final class Python {
    private Python() {
    }

    /** Null when python3 imports every module, else why not. */
    public static String missing(String... modules) {
        try {
            Process p = new ProcessBuilder("python3", "-c", "import " + String.join(", ", modules)).redirectErrorStream(true).start();
            String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(300, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return "python3 took over 5 minutes to import " + String.join(", ", modules);
            }
            if (p.exitValue() == 0) return null;
            String[] lines = text.strip().split("\n");
            return "python3 cannot import " + String.join(", ", modules) + " (" + lines[lines.length - 1]
                    + "); .ci/run installs them offline from /opt/wheels";
        } catch (IOException e) {
            return "no python3: " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    /** Runs python3 with {@code args} on CPU, its output into {@code log}; fails the test with the log's tail when it fails. */
    public static void run(List<String> args, Path log, int timeoutSeconds) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add("python3");
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("CUDA_VISIBLE_DEVICES", "");
        pb.environment().put("HF_HUB_OFFLINE", "1");
        pb.environment().put("HF_DATASETS_OFFLINE", "1");
        pb.environment().put("TOKENIZERS_PARALLELISM", "false");
        pb.environment().put("OMP_NUM_THREADS", "2");
        Process p = pb.start();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", cmd) + " took over " + timeoutSeconds + " s:\n" + tail(log));
        }
        if (p.exitValue() != 0) throw new AssertionError(String.join(" ", cmd) + " failed (" + p.exitValue() + "):\n" + tail(log));
    }

    public static String tail(Path log) throws IOException {
        String text = Files.readString(log);
        return text.substring(Math.max(0, text.length() - 4000));
    }
}
