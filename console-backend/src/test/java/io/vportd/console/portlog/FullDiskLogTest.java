package io.vportd.console.portlog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A port log on a real, tiny tmpfs that fills up (issue 15: "a drop marker with the exact count
 * when the disk is made full"): writes that do not fit leave no half record behind, and once a
 * ballast file is removed the log says exactly how many bytes are missing, at the place they went
 * missing. Needs root (it mounts the tmpfs), as the project's test command does.
 */
@Timeout(60)
class FullDiskLogTest {

    static final Pattern MARKER = Pattern.compile("\\[vportd: (\\d+) bytes of guest output dropped: [^\\]]*\\]\\n");

    @TempDir
    Path dir;
    private Path mount;

    @BeforeEach
    void mountTinyTmpfs() throws Exception {
        mount = dir.resolve("tiny");
        Files.createDirectories(mount);
        Process p = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=96k,mode=0700", "tmpfs", mount.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), "mounting a tmpfs needs root (the project's tests run as root): " + out);
    }

    @AfterEach
    void unmount() throws Exception {
        new ProcessBuilder("umount", "-l", mount.toString()).redirectErrorStream(true).start().waitFor();
    }

    /** A record of guest output: numbered lines, {@code n} bytes in all. */
    private static byte[] record(int seq, int n) {
        byte[] b = new byte[n];
        byte[] line = String.format("record %05d, a line of guest output that fills the disk....\n", seq)
                .getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < n; i++) {
            b[i] = line[i % line.length];
        }
        b[n - 1] = '\n';
        return b;
    }

    @Test
    void aFullDiskLeavesNoHalfRecordAndTheMarkerCountsExactlyWhatIsMissing() throws Exception {
        Path ballast = mount.resolve("ballast");
        Files.write(ballast, new byte[40 * 1024]); // room for the log: what is left of 96 KiB
        Path log = mount.resolve("port.log");
        int size = 7000; // not a divisor of the page size: a record straddles the point the disk fills
        int records = 12; // 84,000 bytes: more than the ~56 KiB left
        LogWriter w = new LogWriter(FileLogTarget.open(new LogSpec(log, false, 1L << 30, 1, false, 0)), "port 1",
                1 << 20);
        byte[] scratch = new byte[1 << 20];
        long offered = 0;
        for (int i = 0; i < records; i++) {
            byte[] r = record(i, size);
            assertEquals(0, w.offer(r, 0, r.length, 1), "the writer's buffer takes it");
            offered += r.length;
            w.drainOnce(scratch); // on this thread: each record is one write to the file
        }
        // While the disk is full the file holds whole records and markers (a marker fits where a
        // record does not), never part of a record.
        String full = Files.readString(log, StandardCharsets.US_ASCII);
        String content = MARKER.matcher(full).replaceAll("");
        assertEquals(0, content.length() % size, "only whole records are in the file: " + content.length());
        int whole = content.length() / size;
        assertTrue(whole < records, "the disk filled up: " + whole + " records");
        StringBuilder expected = new StringBuilder();
        for (int i = 0; i < whole; i++) {
            expected.append(new String(record(i, size), StandardCharsets.US_ASCII));
        }
        assertEquals(expected.toString(), content, "the whole records, in order");

        Files.delete(ballast); // the operator makes room
        byte[] last = record(records, size);
        w.offer(last, 0, last.length, 1);
        offered += last.length;
        w.drainOnce(scratch);
        w.close();
        assertTrue(w.awaitClosed(5000));

        String text = Files.readString(log, StandardCharsets.US_ASCII);
        Matcher m = MARKER.matcher(text);
        long missing = 0;
        int markers = 0;
        while (m.find()) {
            missing += Long.parseLong(m.group(1));
            markers++;
        }
        assertTrue(markers > 0, "a drop marker: " + text.substring(Math.max(0, text.length() - 300)));
        String kept = MARKER.matcher(text).replaceAll("");
        assertEquals(offered, kept.length() + missing, "bytes in the file plus the markers' counts are all the guest wrote");
        assertEquals(expected + new String(last, StandardCharsets.US_ASCII), kept,
                "what is kept: the whole records from before the disk filled, then the one written after room was made");
        assertEquals((long) (records - whole) * size, missing, "exactly the records that did not fit are missing");
    }
}
