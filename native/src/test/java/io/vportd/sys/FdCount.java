package io.vportd.sys;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** Counts this process's open descriptors through /proc/self/fd (for leak checks in tests). */
public final class FdCount {

    private FdCount() {
    }

    public static long now() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count(); // the directory stream's own fd is counted both times
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
