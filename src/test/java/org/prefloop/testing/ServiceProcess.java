package org.prefloop.testing;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The packaged service ({@code target/quarkus-app/quarkus-run.jar}) as a child process with its
 * own data directory and port: the embedded default exactly as a user starts it.
 */
public final class ServiceProcess implements AutoCloseable {
    public static final String ADMIN_PASSWORD = "it-admin-password";
    static final long START_SECONDS = Long.getLong("prefloop.it.start-seconds", 180);

    private final Path dataDir;
    private final int port;
    private final int managementPort;
    private final Map<String, String> extraEnv;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private Process process;
    private int starts;

    public ServiceProcess(Path dataDir, Map<String, String> extraEnv) throws IOException {
        this.dataDir = dataDir;
        this.extraEnv = extraEnv;
        try (ServerSocket s = new ServerSocket(0); ServerSocket m = new ServerSocket(0)) {
            this.port = s.getLocalPort();
            this.managementPort = m.getLocalPort();
        }
    }

    static Path jar() {
        Path jar = Path.of(System.getProperty("prefloop.jar", "target/quarkus-app/quarkus-run.jar"));
        if (!Files.exists(jar)) throw new IllegalStateException(jar + " is missing: run the integration tests with ./mvnw verify");
        return jar;
    }

    /** Starts the service and waits until it reports ready. */
    public ServiceProcess start() throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector", "-Dai.djl.offline=true",
                "-Xmx1g", "-jar", jar().toString()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dataDir.resolve("service-" + (++starts) + ".log").toFile()));
        pb.environment().put("PREFLOOP_DATA", dataDir.toString());
        pb.environment().put("PORT", String.valueOf(port));
        pb.environment().put("PREFLOOP_MANAGEMENT_PORT", String.valueOf(managementPort));
        pb.environment().put("PREFLOOP_ADMIN_PASSWORD", ADMIN_PASSWORD);
        pb.environment().put("PREFLOOP_JSON_LOGS", "false");
        // A cheap bcrypt: these tests are about the data path, not about password hashing.
        pb.environment().put("PREFLOOP_BCRYPT_COST", "4");
        pb.environment().remove("KAFKA_BOOTSTRAP_SERVERS");
        pb.environment().putAll(extraEnv);
        process = pb.start();
        // 90 s is plenty alone; on a machine shared by several builds a start has taken longer
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(START_SECONDS);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                List<String> log = Files.readAllLines(dataDir.resolve("service-" + starts + ".log"));
                throw new IllegalStateException("the service exited with " + process.exitValue() + "; its log ends:\n"
                        + String.join("\n", log.subList(Math.max(0, log.size() - 25), log.size())));
            }
            try {
                if (management("/q/health/ready").statusCode() == 200) return this;
            } catch (IOException notYet) {
                // not listening yet
            }
            Thread.sleep(250);
        }
        throw new IllegalStateException("the service did not become ready in " + START_SECONDS + " s; see " + dataDir);
    }

    /** SIGKILL: no shutdown hook, no flush, no commit. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /** SIGTERM and wait for a clean shutdown. */
    public void stop() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(60, TimeUnit.SECONDS)) kill();
    }

    public HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return http.send(request(path).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    /** A GET on the management interface (health, metrics), which has a port of its own. */
    public HttpResponse<String> management(String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + managementPort + path)).timeout(Duration.ofSeconds(30))
                .GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    public HttpResponse<String> postJson(String path, String body) throws IOException, InterruptedException {
        return http.send(request(path).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The same POST as another user (HTTP Basic). */
    public HttpResponse<String> postJsonAs(String user, String password, String path, String body) throws IOException, InterruptedException {
        String auth = Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(30))
                .header("Authorization", "Basic " + auth).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** A signed-in browser session on this process: the session cookie and the page's CSRF token. */
    public record SignedIn(String cookie, String csrf) {
    }

    /** Signs in through the form as a browser does; the answer when the form refuses (401, 429). */
    public HttpResponse<String> postSignIn(String user, String password) throws IOException, InterruptedException {
        String base = "http://127.0.0.1:" + port;
        HttpResponse<String> form = http.send(HttpRequest.newBuilder(URI.create(base + "/login")).build(), HttpResponse.BodyHandlers.ofString());
        String formToken = between(form.body(), "name=\"csrf\" value=\"", "\"");
        String formCookie = between(form.headers().firstValue("Set-Cookie").orElseThrow(), "prefloop_signin=", ";");
        return http.send(HttpRequest.newBuilder(URI.create(base + "/login"))
                .header("Cookie", "prefloop_signin=" + formCookie).header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString("username=" + user + "&password=" + password + "&csrf=" + formToken + "&next="))
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Signs in through the form and reads the CSRF token from the page the user lands on. */
    public SignedIn signIn(String user, String password) throws IOException, InterruptedException {
        HttpResponse<String> signedIn = postSignIn(user, password);
        if (signedIn.statusCode() != 303) throw new IllegalStateException("sign-in answered " + signedIn.statusCode());
        String cookie = signedIn.headers().allValues("Set-Cookie").stream().filter(c -> c.startsWith("prefloop_session="))
                .map(c -> between(c, "prefloop_session=", ";")).findFirst().orElseThrow();
        String home = signedIn.headers().firstValue("Location").orElseThrow();
        HttpResponse<String> page = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port).resolve(home))
                .header("Cookie", "prefloop_session=" + cookie).build(), HttpResponse.BodyHandlers.ofString());
        return new SignedIn(cookie, between(page.body(), "name=\"csrf-token\" content=\"", "\""));
    }

    /** A request in a signed-in session (cookie and CSRF token), as the pages' scripts send it. */
    public HttpResponse<String> send(SignedIn session, String method, String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(30))
                .header("Cookie", "prefloop_session=" + session.cookie()).header("X-CSRF-Token", session.csrf())
                .method(method, HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** A GET as another user (HTTP Basic). */
    public HttpResponse<String> getAs(String user, String password, String path) throws IOException, InterruptedException {
        String auth = Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(30))
                .header("Authorization", "Basic " + auth).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    private static String between(String text, String start, String end) {
        int from = text.indexOf(start) + start.length();
        return text.substring(from, text.indexOf(end, from));
    }

    private HttpRequest.Builder request(String path) {
        String auth = Base64.getEncoder().encodeToString(("admin:" + ADMIN_PASSWORD).getBytes(StandardCharsets.UTF_8));
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .header("Authorization", "Basic " + auth).timeout(Duration.ofSeconds(30));
    }

    public int port() {
        return port;
    }

    @Override
    public void close() throws InterruptedException {
        if (process != null && process.isAlive()) stop();
    }
}
