package io.vportd.console.portlog;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Rotation (sizes, names, modes, order), timestamps and the drop marker of a port's log file. */
class FileLogTargetTest {

    @TempDir
    Path dir;

    private static LogSpec spec(Path p, long max, int keep, boolean stamps) {
        return new LogSpec(p, false, max, keep, stamps, 0);
    }

    private static byte[] numberedLines(int from, int to) {
        StringBuilder b = new StringBuilder();
        for (int i = from; i < to; i++) {
            b.append(String.format("line %06d of the guest's output\n", i));
        }
        return b.toString().getBytes(StandardCharsets.US_ASCII);
    }

    private byte[] concatenated(Path log, int keep) throws IOException {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (int k = keep; k >= 1; k--) {
            Path r = log.resolveSibling(log.getFileName() + "." + k);
            if (Files.exists(r)) {
                all.writeBytes(Files.readAllBytes(r));
            }
        }
        all.writeBytes(Files.readAllBytes(log));
        return all.toByteArray();
    }

    @Test
    void rotatedFilesReadOldestFirstAreTheStreamAndEachIsFullAnd0600() throws IOException {
        Path log = dir.resolve("con.log");
        byte[] data = numberedLines(0, 1000); // 34 KB
        try (FileLogTarget t = FileLogTarget.open(spec(log, 4096, 20, false))) {
            for (int off = 0; off < data.length; off += 777) { // pieces that do not line up with the size
                t.write(data, off, Math.min(777, data.length - off), 0);
            }
        }
        assertArrayEquals(data, concatenated(log, 20));
        for (int k = 1; k <= data.length / 4096; k++) {
            Path r = dir.resolve("con.log." + k);
            assertEquals(4096, Files.size(r), r + " is filled to log-max exactly");
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(r)));
        }
        assertEquals(data.length % 4096, Files.size(log));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(log)));
    }

    @Test
    void onlyLogKeepRotatedFilesStayAndTheyHoldTheNewestOutput() throws IOException {
        Path log = dir.resolve("g.log");
        byte[] data = numberedLines(0, 1000);
        try (FileLogTarget t = FileLogTarget.open(spec(log, 4096, 2, false))) {
            t.write(data, 0, data.length, 0);
        }
        assertFalse(Files.exists(dir.resolve("g.log.3")));
        byte[] kept = concatenated(log, 2);
        assertEquals(2 * 4096 + data.length % 4096, kept.length);
        assertArrayEquals(java.util.Arrays.copyOfRange(data, data.length - kept.length, data.length), kept);
    }

    @Test
    void anExistingLogIsAppendedToAndMadePrivate() throws IOException {
        Path log = dir.resolve("old.log");
        Files.writeString(log, "before\n");
        Files.setPosixFilePermissions(log, PosixFilePermissions.fromString("rw-r--r--"));
        try (FileLogTarget t = FileLogTarget.open(spec(log, 1 << 20, 1, false))) {
            t.write("after\n".getBytes(StandardCharsets.US_ASCII), 0, 6, 0);
        }
        assertEquals("before\nafter\n", Files.readString(log));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(log)));
    }

    @Test
    void aPathThatCannotBeWrittenIsAClearErrorNamingTheKey() throws IOException {
        IOException missing = assertThrows(IOException.class,
                () -> FileLogTarget.open(spec(dir.resolve("no/such/dir/x.log"), 4096, 1, false)));
        assertTrue(missing.getMessage().startsWith("log=" + dir.resolve("no/such/dir/x.log")), missing.getMessage());
        assertTrue(missing.getMessage().contains("does not exist"), missing.getMessage());
        Path file = Files.writeString(dir.resolve("plain"), "x");
        IOException notDir = assertThrows(IOException.class,
                () -> FileLogTarget.open(spec(file.resolve("x.log"), 4096, 1, false)));
        assertTrue(notDir.getMessage().startsWith("log="), notDir.getMessage());
    }

    private static final Pattern STAMPED = Pattern.compile(
            "(\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z) (.*)");

    @Test
    void timestampsAreUtcRfc3339OnePerLineMonotoneAndTakenWhenALineStarts() throws IOException {
        Path log = dir.resolve("ts.log");
        long t0 = Instant.parse("2026-11-29T07:59:59.998Z").toEpochMilli();
        try (FileLogTarget t = FileLogTarget.open(spec(log, 1 << 20, 1, true))) {
            write(t, "first line\nsecond ", t0);
            write(t, "half\n", t0 + 5000); // the rest of a line: stamped when it started
            write(t, "third\nfourth\n", t0 + 2); // crossing a second
            write(t, "fifth\n", t0 - 60_000); // the wall clock stepped back: no earlier stamp
            write(t, "\n", t0 + 3);
        }
        List<String> lines = Files.readAllLines(log);
        List<String> texts = List.of("first line", "second half", "third", "fourth", "fifth", "");
        List<String> stamps = List.of("2026-11-29T07:59:59.998Z", "2026-11-29T07:59:59.998Z", "2026-11-29T08:00:00.000Z",
                "2026-11-29T08:00:00.000Z", "2026-11-29T08:00:00.000Z", "2026-11-29T08:00:00.001Z");
        assertEquals(texts.size(), lines.size(), lines.toString());
        String previous = "";
        for (int i = 0; i < lines.size(); i++) {
            Matcher m = STAMPED.matcher(lines.get(i));
            assertTrue(m.matches(), "one stamp per line: " + lines.get(i));
            assertEquals(texts.get(i), m.group(2));
            assertEquals(stamps.get(i), m.group(1));
            assertTrue(m.group(1).compareTo(previous) >= 0, "monotone");
            previous = m.group(1);
        }
    }

    private static void write(FileLogTarget t, String s, long millis) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        t.write(b, 0, b.length, millis);
    }

    @Test
    void aDropMarkerStartsOnItsOwnLineAndNamesTheCount() throws IOException {
        Path log = dir.resolve("d.log");
        try (FileLogTarget t = FileLogTarget.open(spec(log, 1 << 20, 1, false))) {
            write(t, "abc", 0);
            t.dropped(12345, 0);
            write(t, "def\n", 0);
        }
        assertEquals("abc\n[vportd: 12345 bytes of guest output dropped: the log fell behind or could not be written]\ndef\n",
                Files.readString(log));
    }
}
