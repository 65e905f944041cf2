package org.prefloop.deploy;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The front door: ./mvnw and ./prefloop find a JDK 21+ themselves (.mvn/find-jdk.sh) or stop at once
 * with one line saying what to install. Runs the real scripts against fake Java homes (a `release`
 * file and stub executables) and a PATH that holds only the few tools the scripts use, so the
 * machine's own JDKs play no part.
 */
class FindJdkTest {
    private static final List<String> TOOLS = List.of("sh", "bash", "env", "uname", "dirname", "basename", "sed", "readlink");

    @TempDir Path tmp;
    private Path bin;
    private Path jvms;
    private Path sdkman;

    @BeforeEach
    void tools() throws IOException {
        bin = Files.createDirectories(tmp.resolve("bin"));
        for (String tool : TOOLS) {
            Path real = List.of(Path.of("/usr/bin", tool), Path.of("/bin", tool)).stream()
                    .filter(Files::isExecutable).findFirst().orElseThrow(() -> new IllegalStateException("no " + tool));
            Files.createSymbolicLink(bin.resolve(tool), real);
        }
        jvms = Files.createDirectories(tmp.resolve("jvm"));
        sdkman = Files.createDirectories(tmp.resolve("sdkman"));
    }

    @Test
    void noSuitableJdkStopsAtOnceWithOneLineSayingWhatToInstall() throws Exception {
        Path old = javaHome(jvms, "java-17", "17.0.15", true);
        Files.createSymbolicLink(bin.resolve("java"), old.resolve("bin/java"));
        for (String script : List.of("mvnw", "prefloop")) {
            Result r = run(null, "./" + script, "-v");
            assertEquals(1, r.exit, r.toString());
            assertEquals("", r.out, "nothing else ran: " + r);
            List<String> lines = r.err.lines().toList();
            assertEquals(1, lines.size(), r.toString());
            assertTrue(lines.get(0).startsWith(script + ": needs a JDK 21 or newer"), r.toString());
            assertTrue(lines.get(0).contains("install"), r.toString());
        }
    }

    @Test
    void takesTheNewestJdkOfTheSystemDirectoryWhenJavaHomeIsUnsetOrTooOld() throws Exception {
        javaHome(jvms, "java-17", "17.0.15", true);
        Path jdk21 = javaHome(jvms, "jdk-21", "21.0.2", true);
        Path jre25 = javaHome(jvms, "jre-25", "25.0.1", false);
        javaHome(sdkman, "26-tem", "26", true);
        assertEquals(jdk21.toString(), found(null, "javac"), "building needs javac, which the JRE lacks");
        assertEquals(jre25.toString(), found(null, "java"), "running needs only java");
        assertEquals(jdk21.toString(), found(jvms.resolve("java-17").toString(), "javac"), "JAVA_HOME too old");
    }

    @Test
    void keepsASuitableJavaHome() throws Exception {
        Path mine = javaHome(tmp, "my-jdk", "22", true);
        javaHome(jvms, "jdk-25", "25", true);
        assertEquals(mine.toString(), found(mine.toString(), "javac"));
    }

    @Test
    void thenSdkmanThenJavaOnPath() throws Exception {
        Path sdk = javaHome(sdkman, "21.0.5-tem", "21.0.5", true);
        assertEquals(sdk.toString(), found(null, "javac"));

        Files.delete(sdk.resolve("bin/javac"));
        Path onPath = javaHome(tmp, "opt-jdk", null, true); // no release file: asks `java -version`
        Files.createSymbolicLink(bin.resolve("java"), onPath.resolve("bin/java"));
        assertEquals(onPath.toString(), found(null, "javac"));
    }

    /** What find_jdk settles on, for the given JAVA_HOME (null: unset) and tool. */
    private String found(String javaHome, String tool) throws Exception {
        Result r = run(javaHome, "sh", "-c", ". .mvn/find-jdk.sh && find_jdk test " + tool + " && echo \"$JAVA_HOME\"");
        assertEquals(0, r.exit, r.toString());
        return r.out.strip();
    }

    /** A fake Java home: `release` says the version (when given) and bin/java prints it the way java does. */
    private static Path javaHome(Path parent, String name, String version, boolean withJavac) throws IOException {
        Path binDir = Files.createDirectories(parent.resolve(name).resolve("bin"));
        String v = version != null ? version : "23.0.1";
        Path java = Files.writeString(binDir.resolve("java"),
                "#!/bin/sh\necho 'Picked up JAVA_TOOL_OPTIONS: -Dx=\"1\"' >&2\necho 'openjdk version \"" + v + "\" 2025-01-01' >&2\n");
        Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
        if (withJavac) Files.copy(java, binDir.resolve("javac"));
        if (version != null) Files.writeString(binDir.getParent().resolve("release"), "IMPLEMENTOR=\"test\"\nJAVA_VERSION=\"" + version + "\"\n");
        return binDir.getParent();
    }

    private record Result(int exit, String out, String err) {}

    private Result run(String javaHome, String... command) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(List.of(command))).directory(Path.of("").toAbsolutePath().toFile());
        if (!command[0].contains("/")) pb.command().set(0, bin.resolve(command[0]).toString());
        Map<String, String> env = pb.environment();
        env.remove("JAVA_HOME");
        env.remove("SDKMAN_CANDIDATES_DIR");
        if (javaHome != null) env.put("JAVA_HOME", javaHome);
        env.put("PATH", bin.toString());
        env.put("HOME", tmp.toString());
        env.put("PREFLOOP_JDK_DIRS", jvms + " " + sdkman);
        Process p = pb.start();
        p.getOutputStream().close();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("timed out: " + String.join(" ", command));
        }
        return new Result(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8),
                new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
    }
}
