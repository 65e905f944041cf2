package org.prefloop.platform;

import jakarta.inject.Singleton;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The only places a request may name a file on this server: the configured roots
 * ({@code prefloop.file-roots}: the models root, the datasets root and the data directory by
 * default). A relative name resolves against the working directory, as README's examples
 * ({@code models/demo}, {@code preference-data/synthetic/heldout.jsonl}) are written. Links are
 * followed before the check, so a link inside a root cannot point outside it. The data
 * directory's store and broker logs ({@code db/}, {@code kafka/}) are never readable.
 * A refusal quotes what the client sent, never the resolved path or anything in the file.
 */
@Singleton
public class FileRoots {
    private final List<Path> roots = new ArrayList<>();
    private final List<Path> denied = new ArrayList<>();
    private final String described;

    FileRoots(Settings settings) {
        for (String r : settings.fileRoots()) roots.add(real(Path.of(r.trim()).toAbsolutePath().normalize()));
        Path data = real(Path.of(settings.dataDir()).toAbsolutePath().normalize());
        denied.add(data.resolve("db"));
        denied.add(data.resolve("kafka"));
        described = "the models root, the datasets root or the data directory (prefloop.file-roots)";
    }

    /** The file or directory {@code given} names, when it lies inside a root; a 422 naming {@code field} otherwise. */
    public Path resolve(String field, String given) {
        if (given == null || given.isBlank()) throw ProblemException.invalid(field, field + " is empty");
        Path p;
        try {
            p = real(Path.of(given).toAbsolutePath().normalize());
        } catch (InvalidPathException e) {
            throw ProblemException.invalid(field, field + " '" + given + "' is not a valid path");
        }
        if (!allowed(p)) {
            throw ProblemException.invalid(field, field + " '" + given + "' is outside the files this service may read: "
                    + "name a dataset (dataset:ID), a model version (version:ID), or a path under " + described);
        }
        return p;
    }

    public boolean allowed(Path real) {
        for (Path d : denied) if (real.startsWith(d)) return false;
        for (Path r : roots) if (real.startsWith(r)) return true;
        return false;
    }

    /** The real path (links followed) of the longest existing prefix, with the rest appended. */
    static Path real(Path absolute) {
        Path existing = absolute;
        while (existing != null && !Files.exists(existing)) existing = existing.getParent();
        if (existing == null) return absolute;
        try {
            return existing.toRealPath().resolve(existing.relativize(absolute)).normalize();
        } catch (IOException e) {
            return absolute;
        }
    }
}
