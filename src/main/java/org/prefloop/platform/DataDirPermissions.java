package org.prefloop.platform;

import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Singleton;
import org.jboss.logging.Logger;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.stream.Stream;

/**
 * The data directory holds the store (password hashes included), the broker's log and the runs:
 * only the service's own user may enter it (0700), and its files are 0600. The directory is
 * created that way before the broker and the store open it; at start every file and folder
 * already in it is brought to those modes (files created later sit inside a 0700 directory).
 */
@Singleton
public class DataDirPermissions {
    private static final Logger LOG = Logger.getLogger(DataDirPermissions.class);
    private static final boolean POSIX = FileSystems.getDefault().supportedFileAttributeViews().contains("posix");

    /** Creates the directory (and its parents) if needed and makes it 0700. */
    public static void ensurePrivate(Path dir) {
        try {
            Files.createDirectories(dir);
            if (POSIX) Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        } catch (IOException | UnsupportedOperationException e) {
            LOG.warnf("could not make %s private: %s", dir.getFileName(), e.getMessage());
        }
    }

    void onStart(@Observes StartupEvent event, Settings settings) {
        secureTree(Path.of(settings.dataDir()));
    }

    /** 0700 for every directory, 0600 for every file under {@code root}. */
    public static void secureTree(Path root) {
        if (!POSIX || !Files.isDirectory(root)) return;
        ensurePrivate(root);
        try (Stream<Path> all = Files.walk(root)) {
            all.forEach(p -> {
                try {
                    if (Files.isSymbolicLink(p)) return;
                    Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(Files.isDirectory(p) ? "rwx------" : "rw-------"));
                } catch (IOException | RuntimeException ignored) {
                    // a file that vanished meanwhile (a rolled log segment) needs no mode
                }
            });
        } catch (IOException | RuntimeException e) {
            LOG.warnf("could not bring the data directory to 0700/0600: %s", e.getMessage());
        }
    }
}
