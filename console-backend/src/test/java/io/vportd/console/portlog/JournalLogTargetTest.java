package io.vportd.console.portlog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.sys.UnixSockets;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Journal entries as journald would receive them: a real AF_UNIX datagram socket bound in a
 * temporary directory stands in for /run/systemd/journal/socket, and its datagrams are parsed
 * with the native protocol's rules (KEY=value lines; KEY, newline, 64-bit little-endian length,
 * value, newline for binary-safe values).
 */
@Timeout(30)
class JournalLogTargetTest {

    @TempDir
    Path dir;

    private Fd listener;
    private Arena arena;
    private MemorySegment buf;

    @BeforeEach
    void listen() throws IOException {
        listener = UnixSockets.bindDatagram(dir.resolve("journal.sock"));
        arena = Arena.ofConfined();
        buf = arena.allocate(256 * 1024);
    }

    @AfterEach
    void close() {
        listener.closeQuietly();
        arena.close();
    }

    /** Receives one datagram and parses it into fields (a repeated key keeps the last value). */
    private Map<String, String> entry() {
        long n = Io.read(listener.fd(), buf.address(), buf.byteSize());
        assertTrue(n > 0, "a datagram: " + n);
        byte[] d = buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
        Map<String, String> fields = new LinkedHashMap<>();
        int i = 0;
        while (i < d.length) {
            int end = i;
            while (d[end] != '=' && d[end] != '\n') {
                end++;
            }
            String key = new String(d, i, end - i, StandardCharsets.US_ASCII);
            if (d[end] == '=') {
                int nl = end + 1;
                while (d[nl] != '\n') {
                    nl++;
                }
                fields.put(key, new String(d, end + 1, nl - end - 1, StandardCharsets.UTF_8));
                i = nl + 1;
            } else {
                long len = 0;
                for (int b = 0; b < 8; b++) {
                    len |= (long) (d[end + 1 + b] & 0xff) << (8 * b);
                }
                int start = end + 9;
                fields.put(key, new String(d, start, (int) len, StandardCharsets.UTF_8));
                assertEquals('\n', d[start + (int) len], "a binary-safe value ends with a newline");
                i = start + (int) len + 1;
            }
        }
        return fields;
    }

    private static void write(LogTarget t, String s) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        t.write(b, 0, b.length, 0);
    }

    @Test
    void eachLineIsAnEntryWithTheDeviceAndPortFields() throws IOException {
        try (JournalLogTarget t = JournalLogTarget.open(dir.resolve("journal.sock"), "/run/vm1/vportd.sock", 3,
                "org.example.log")) {
            write(t, "hello\nwor");
            write(t, "ld\n");
        }
        Map<String, String> first = entry();
        assertEquals("hello", first.get("MESSAGE"));
        assertEquals("6", first.get("PRIORITY"));
        assertEquals("vportd", first.get("SYSLOG_IDENTIFIER"));
        assertEquals("/run/vm1/vportd.sock", first.get("VPORTD_DEVICE"));
        assertEquals("3", first.get("VPORTD_PORT"));
        assertEquals("org.example.log", first.get("VPORTD_PORT_NAME"));
        assertEquals("world", entry().get("MESSAGE"), "a line written in two pieces is one entry");
    }

    @Test
    void aValueWithANewlineUsesTheBinarySafeFormAndAnUnnamedPortHasNoNameField() throws IOException {
        try (JournalLogTarget t = JournalLogTarget.open(dir.resolve("journal.sock"), "two\nlines", 0, null)) {
            write(t, "x\n");
        }
        Map<String, String> e = entry();
        assertEquals("two\nlines", e.get("VPORTD_DEVICE"));
        assertEquals("x", e.get("MESSAGE"));
        assertFalse(e.containsKey("VPORTD_PORT_NAME"));
    }

    @Test
    void dropsArriveAsAWarningWithTheCountAndAPartialLineIsSentWhenItHasWaited() throws IOException {
        try (JournalLogTarget t = JournalLogTarget.open(dir.resolve("journal.sock"), "d", 1, "p")) {
            t.write("login: ".getBytes(StandardCharsets.US_ASCII), 0, 7, 1000);
            t.idle(1000 + JournalLogTarget.PARTIAL_WAIT_MS - 1); // not yet
            t.idle(1000 + JournalLogTarget.PARTIAL_WAIT_MS);
            Map<String, String> prompt = entry();
            assertEquals("login: ", prompt.get("MESSAGE"));
            t.dropped(4242, 0);
        }
        Map<String, String> drop = entry();
        assertEquals("4", drop.get("PRIORITY"));
        assertTrue(drop.get("MESSAGE").contains("4242 bytes"), drop.get("MESSAGE"));
    }

    @Test
    void anAbsentJournalSocketIsAClearStartUpError() {
        IOException e = assertThrows(IOException.class,
                () -> JournalLogTarget.open(dir.resolve("nobody-here.sock"), "d", 1, null));
        assertTrue(e.getMessage().startsWith("log=journal: the journal socket"), e.getMessage());
        assertTrue(e.getMessage().contains("absent"), e.getMessage());
    }
}
