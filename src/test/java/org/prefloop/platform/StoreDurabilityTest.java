package org.prefloop.platform;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the embedded store committed survives the process dying right after. The ingest consumer
 * commits a batch's Kafka offsets once the store committed it, so a commit that lives only in
 * memory for a while (H2's default write delay of a second) is a judgment lost for good when the
 * process is killed in that window. A child JVM opens the store with the shipped JDBC URL,
 * commits rows one transaction each, and halts without closing anything, as SIGKILL would.
 */
class StoreDurabilityTest {
    static final int ROWS = 50;
    static final int HALTED = 3;

    @Test
    void everyCommitSurvivesAHaltRightAfterIt(@TempDir Path data) throws Exception {
        String url = shippedUrl().replace("${prefloop.data-dir}", data.toString());
        try (Connection c = DriverManager.getConnection(url, "prefloop", "")) {
            c.createStatement().execute("create table judgments (id int primary key)");
        }
        String java = ProcessHandle.current().info().command().orElse("java");
        Process child = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), CommitThenHalt.class.getName(), url)
                .redirectErrorStream(true).start();
        assertTrue(child.waitFor(60, TimeUnit.SECONDS), "the child finished");
        String out = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(HALTED, child.exitValue(), "the child halted after committing; it printed: " + out);
        assertTrue(out.contains("committed " + ROWS), out);

        try (Connection c = DriverManager.getConnection(url, "prefloop", "");
             ResultSet rs = c.createStatement().executeQuery("select count(*) from judgments")) {
            rs.next();
            assertEquals(ROWS, rs.getInt(1), "rows committed before the halt are in the store");
        }
    }

    /** The H2 URL the service runs with by default, from its application.properties. */
    static String shippedUrl() throws Exception {
        Properties p = new Properties();
        try (InputStream in = StoreDurabilityTest.class.getResourceAsStream("/application.properties")) {
            p.load(in);
        }
        String url = p.getProperty("quarkus.datasource.jdbc.url");
        assertTrue(url.startsWith("jdbc:h2:file:${prefloop.data-dir}/"), url);
        return url;
    }

    /** Commits {@value #ROWS} rows, one transaction each, then halts: no shutdown hook closes the store. */
    public static class CommitThenHalt {
        public static void main(String[] args) throws Exception {
            Connection c = DriverManager.getConnection(args[0], "prefloop", "");
            c.setAutoCommit(false);
            PreparedStatement insert = c.prepareStatement("insert into judgments values (?)");
            for (int i = 0; i < ROWS; i++) {
                insert.setInt(1, i);
                insert.executeUpdate();
                c.commit();
            }
            System.out.println("committed " + ROWS);
            System.out.flush();
            Runtime.getRuntime().halt(HALTED);
        }
    }
}
