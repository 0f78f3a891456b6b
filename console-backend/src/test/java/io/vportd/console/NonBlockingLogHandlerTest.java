package io.vportd.console;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.time.Duration;
import java.util.logging.Formatter;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.SimpleFormatter;
import org.junit.jupiter.api.Test;

class NonBlockingLogHandlerTest {

    /** An output whose writes wait until released (a stderr pipe nobody reads). */
    static final class StuckStream extends OutputStream {
        final CountDownLatch entered = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        final ByteArrayOutputStream got = new ByteArrayOutputStream();

        @Override
        public void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) {
            entered.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            synchronized (got) {
                got.write(b, off, len);
            }
        }

        String text() {
            synchronized (got) {
                return got.toString(StandardCharsets.UTF_8);
            }
        }
    }

    private static SimpleFormatter lineFormatter() {
        System.setProperty("java.util.logging.SimpleFormatter.format", Logging.FORMAT);
        return new SimpleFormatter();
    }

    private static LogRecord record(String msg) {
        LogRecord r = new LogRecord(Level.WARNING, msg);
        r.setLoggerName("io.vportd.test");
        return r;
    }

    @Test
    void aBlockedOutputNeverBlocksTheLoggerAndEveryDropIsCounted() throws Exception {
        StuckStream out = new StuckStream();
        int capacity = 64;
        // A cheap formatter: this test is about waiting, not about the cost of formatting dates.
        Formatter plain = new Formatter() {
            @Override
            public String format(LogRecord r) {
                return r.getLoggerName() + ": " + formatMessage(r) + "\n";
            }
        };
        NonBlockingLogHandler h = new NonBlockingLogHandler(out, plain, capacity);
        try {
            h.publish(record("first"));
            assertTrue(out.entered.await(10, TimeUnit.SECONDS), "the writer took the first line");
            // A handler that waited for the output would never return here (the stream never moves).
            assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
                for (int i = 0; i < 100_000; i++) {
                    h.publish(record("line " + i));
                }
            });
            // The writer holds "first"; the queue holds the first `capacity` of the 100k.
            assertEquals(100_000 - capacity, h.dropped());

            out.release.countDown();
            assertTrue(h.awaitDrained(10_000), "the writer caught up once the output moved");
            String text = out.text();
            assertTrue(text.contains("io.vportd.test: line " + (capacity - 1) + "\n"), text);
            assertTrue(!text.contains("io.vportd.test: line " + capacity + "\n"), "a dropped line was written");
            assertTrue(text.contains("vportd.log: " + (100_000 - capacity)
                    + " log records dropped: the log output did not keep up\n"), text);
            assertEquals(capacity + 2, h.written(), "first, the queued lines and one note");
        } finally {
            out.release.countDown();
            h.close();
        }
    }

    @Test
    void linesKeepTheDaemonsFormat() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        NonBlockingLogHandler h = new NonBlockingLogHandler(bytes, lineFormatter(), 16);
        LogRecord r = new LogRecord(Level.INFO, "port {0}: {1}");
        r.setParameters(new Object[] {"3", "ready"});
        r.setLoggerName("io.vportd.console.device.DataPlane");
        h.publish(r);
        h.close();
        String line = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(line.matches("\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO    "
                + "io\\.vportd\\.console\\.device\\.DataPlane: port 3: ready\\R"), line);
        assertEquals(0, h.dropped());
    }
}
