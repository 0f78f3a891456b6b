package io.vportd.it;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The flat temporary folders guest tests keep their sockets and files in. */
public final class TempDirs {

    private TempDirs() {
    }

    /** Removes {@code dir} and the files directly in it (the tests make no subfolders there). */
    public static void removeFlat(Path dir) throws IOException {
        if (dir == null || !Files.isDirectory(dir)) {
            return;
        }
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
    }
}
