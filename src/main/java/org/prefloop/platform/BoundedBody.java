package org.prefloop.platform;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/** Reads a request body up to a limit, so an oversized body is refused before it is parsed. */
public final class BoundedBody {
    private BoundedBody() {
    }

    public static byte[] read(InputStream body, int limit) {
        try {
            byte[] bytes = body.readNBytes(limit + 1);
            if (bytes.length > limit) {
                throw ProblemException.tooLarge("request body is larger than " + (limit / 1024) + " KiB");
            }
            return bytes;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
