package org.prefloop.deploy;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code PREFLOOP_MALLOC}: ./prefloop preloads jemalloc for the JVM when asked (keeping freed pages,
 * unless MALLOC_CONF says otherwise), leaves glibc's allocator alone by default, and refuses
 * anything else with one line before starting Java. Runs a copy of the real script with a packaged
 * jar in place and a fake Java home whose {@code java} prints the environment it was given.
 */
class PrefloopAllocatorTest {
    private static final String NO_DECAY = "dirty_decay_ms:-1,muzzy_decay_ms:-1";

    @TempDir Path tmp;
    private Path app;
    private Path javaHome;

    @BeforeEach
    void app() throws IOException {
        app = Files.createDirectories(tmp.resolve("app"));
        Files.copy(Path.of("prefloop"), app.resolve("prefloop"));
        Files.setPosixFilePermissions(app.resolve("prefloop"), PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.createDirectories(app.resolve(".mvn"));
        Files.copy(Path.of(".mvn/find-jdk.sh"), app.resolve(".mvn/find-jdk.sh"));
        Files.createDirectories(app.resolve("target/quarkus-app"));
        Files.writeString(app.resolve("target/quarkus-app/quarkus-run.jar"), "");
        javaHome = Files.createDirectories(tmp.resolve("jdk/bin")).getParent();
        Path java = Files.writeString(javaHome.resolve("bin/java"), "#!/bin/sh\necho \"LD_PRELOAD=$LD_PRELOAD\"\necho \"MALLOC_CONF=$MALLOC_CONF\"\n");
        Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.writeString(javaHome.resolve("release"), "JAVA_VERSION=\"25\"\n");
    }

    @Test
    void glibcByDefault() throws Exception {
        Result r = run(Map.of());
        assertEquals(0, r.exit, r.toString());
        assertEquals(List.of("LD_PRELOAD=", "MALLOC_CONF="), r.out.lines().toList());
        r = run(Map.of("PREFLOOP_MALLOC", "glibc"));
        assertEquals(List.of("LD_PRELOAD=", "MALLOC_CONF="), r.out.lines().toList());
    }

    @Test
    void aJemallocLibraryIsPreloadedKeepingFreedPagesUnlessMallocConfSaysOtherwise() throws Exception {
        Path lib = Files.writeString(tmp.resolve("libjemalloc.so.2"), ""); // not loadable: the loader says so and runs java without it
        Result r = run(Map.of("PREFLOOP_MALLOC", lib.toString()));
        assertEquals(0, r.exit, r.toString());
        assertEquals(List.of("LD_PRELOAD=" + lib, "MALLOC_CONF=" + NO_DECAY), r.out.lines().toList());
        r = run(Map.of("PREFLOOP_MALLOC", lib.toString(), "MALLOC_CONF", "narenas:1"));
        assertEquals(List.of("LD_PRELOAD=" + lib, "MALLOC_CONF=narenas:1"), r.out.lines().toList());

        Path installed = List.of("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib").stream()
                .map(d -> Path.of(d, "libjemalloc.so.2")).filter(Files::isRegularFile).findFirst().orElse(null);
        r = run(Map.of("PREFLOOP_MALLOC", "jemalloc"));
        if (installed != null) {
            assertEquals(List.of("LD_PRELOAD=" + installed, "MALLOC_CONF=" + NO_DECAY), r.out.lines().toList(), r.toString());
        } else {
            assertEquals(2, r.exit, r.toString());
            assertTrue(r.err.contains("apt-get install libjemalloc2"), r.toString());
        }
    }

    @Test
    void anythingElseStopsBeforeJavaWithOneLine() throws Exception {
        for (String bad : List.of("tcmalloc", "lib/libjemalloc.so.2", tmp.resolve("missing.so").toString())) {
            Result r = run(Map.of("PREFLOOP_MALLOC", bad));
            assertEquals(2, r.exit, r.toString());
            assertEquals("", r.out, "java did not run: " + r);
            assertEquals(1, r.err.lines().count(), r.toString());
            assertTrue(r.err.startsWith("prefloop: PREFLOOP_MALLOC is '" + bad + "'"), r.toString());
        }
    }

    private record Result(int exit, String out, String err) {}

    private Result run(Map<String, String> extra) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(app.resolve("prefloop").toString()).directory(app.toFile());
        Map<String, String> env = pb.environment();
        env.remove("LD_PRELOAD");
        env.remove("MALLOC_CONF");
        env.remove("PREFLOOP_MALLOC");
        env.put("JAVA_HOME", javaHome.toString());
        env.putAll(extra);
        Process p = pb.start();
        p.getOutputStream().close();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("timed out");
        }
        return new Result(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8),
                new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
    }
}
