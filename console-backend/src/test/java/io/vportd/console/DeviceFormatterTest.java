package io.vportd.console;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.SimpleFormatter;
import org.junit.jupiter.api.Test;

/**
 * {@link Logging.DeviceFormatter} makes, without {@link SimpleFormatter}'s costly constructor, the
 * line SimpleFormatter makes with {@link Logging#FORMAT}; in a device's thread, with the device
 * before the message, once.
 */
class DeviceFormatterTest {

    private static LogRecord record(Level level, String message, Object... parameters) {
        LogRecord r = new LogRecord(level, message);
        r.setLoggerName("vportd.device");
        r.setInstant(java.time.Instant.parse("2026-11-30T03:04:05.678Z"));
        r.setParameters(parameters.length == 0 ? null : parameters);
        return r;
    }

    private static String simple(LogRecord r) {
        String before = System.getProperty("java.util.logging.SimpleFormatter.format");
        System.setProperty("java.util.logging.SimpleFormatter.format", Logging.FORMAT);
        try {
            return new SimpleFormatter().format(r);
        } finally {
            if (before == null) {
                System.clearProperty("java.util.logging.SimpleFormatter.format");
            } else {
                System.setProperty("java.util.logging.SimpleFormatter.format", before);
            }
        }
    }

    @Test
    void linesAreSimpleFormattersLines() {
        Logging.DeviceFormatter f = new Logging.DeviceFormatter();
        LogRecord thrown = record(Level.SEVERE, "failed: {0}", "x");
        thrown.setThrown(new IllegalStateException("boom"));
        LogRecord early = record(Level.CONFIG, "single digits everywhere");
        early.setInstant(java.time.Instant.parse("0987-01-02T03:04:05.006Z"));
        for (LogRecord r : new LogRecord[] {early,
                record(Level.INFO, "{0}: listening on {1}", "device vm1: port 3 (org.example.log)", java.nio.file.Path.of("/run/a.sock")),
                record(Level.INFO, "{1} before {0}, {0} twice, {5} missing, {10}", "a", null, "c", "d", "e", "f", "g", "h", "i", "j", "k"),
                record(Level.INFO, "a number {0} and a date {1}", 1234567, new java.util.Date(0)),
                record(Level.INFO, "it''s {0}, '{1}' quoted", "x", "y"),
                record(Level.INFO, "{0,number,#} typed, {} empty, { lone", 42),
                record(Level.INFO, "{100} three digits {0}", "x"),
                record(Level.INFO, "no placeholders but parameters", "x"),
                record(Level.INFO, "vportd serving {0} port(s) on {1}", 12345, "/run/v.sock"),
                record(Level.WARNING, "plain text, no parameters"), record(Level.FINE, "{0} and {1}", 1.5, null), thrown}) {
            assertEquals(simple(r), f.format(r));
        }
    }

    @Test
    void aDevicesThreadPutsTheDeviceFirstOnce() throws Exception {
        Logging.DeviceFormatter f = new Logging.DeviceFormatter();
        String[] lines = new String[2];
        Thread t = Thread.ofPlatform().start(() -> {
            Logging.DEVICE.set("vm1");
            lines[0] = f.format(record(Level.INFO, "reset after {0} s", 3));
            lines[1] = f.format(record(Level.INFO, "device vm1: named already"));
        });
        t.join();
        assertEquals(simple(record(Level.INFO, "device vm1: reset after 3 s")), lines[0]);
        assertEquals(simple(record(Level.INFO, "device vm1: named already")), lines[1]);
    }
}
