package org.prefloop.it;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.testing.ServiceProcess;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The browser side end to end: the packaged service, and web/tests/browser.mjs driving Debian's
 * headless Chromium through playwright-core against it. Screenshots land in target/browser.
 */
class BrowserIT {
    static final Path CHROMIUM = Path.of(System.getProperty("prefloop.chromium", "/usr/bin/chromium"));
    static final Path ARTIFACTS = Path.of("target/browser");

    @Test
    void annotatorsJudgeWithTheKeyboardAndTheDashboardShowsIt(@TempDir Path data) throws Exception {
        assertTrue(Files.isExecutable(CHROMIUM), CHROMIUM + " is missing: .ci/run installs Debian's chromium");
        assertTrue(Files.isDirectory(Path.of("web/node_modules/playwright-core")), "playwright-core is missing: run npm install in web/");
        Files.createDirectories(ARTIFACTS);
        // Production cookie settings (Secure): browsers accept them from http://localhost. The browser steps
        // run with criteria, a daily target, and gold first whenever there is some (PREFLOOP_GOLD_RATE=1).
        try (ServiceProcess service = new ServiceProcess(data, Map.of("PREFLOOP_UNDO_SECONDS", "3", "PREFLOOP_ANNOTATION_CRITERIA", "helpfulness,safety",
                "PREFLOOP_GOLD_RATE", "1", "PREFLOOP_GOLD_MIN_ANSWERS", "2", "PREFLOOP_DAILY_TARGET", "40")).start()) {
            Path log = ARTIFACTS.resolve("browser-test.log");
            ProcessBuilder pb = new ProcessBuilder(List.of("node", "web/tests/browser.mjs")).redirectErrorStream(true)
                    .redirectOutput(log.toFile());
            pb.environment().putAll(Map.of("BASE_URL", "http://localhost:" + service.port(), "ADMIN_PASSWORD", ServiceProcess.ADMIN_PASSWORD,
                    "ARTIFACTS", ARTIFACTS.toString(), "UNDO_SECONDS", "3", "CHROMIUM", CHROMIUM.toString()));
            Process node = pb.start();
            if (!node.waitFor(8, TimeUnit.MINUTES)) {
                node.destroyForcibly();
                throw new AssertionError("the browser test did not finish in 8 minutes");
            }
            String output = Files.readString(log);
            System.out.println(output);
            assertEquals(0, node.exitValue(), "web/tests/browser.mjs failed:\n" + output);
        }
        for (String shot : new String[]{"annotate.png", "dashboard.png", "quality.png"}) {
            assertTrue(Files.size(ARTIFACTS.resolve(shot)) > 10_000, shot + " was saved");
        }
    }
}
