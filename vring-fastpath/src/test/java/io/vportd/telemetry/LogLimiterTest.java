package io.vportd.telemetry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.System.Logger;
import java.util.ArrayList;
import java.util.List;
import java.util.ResourceBundle;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

class LogLimiterTest {

    /** Records what would be logged (the format with its first argument substituted). */
    static final class Recorder implements Logger {
        final List<String> lines = new ArrayList<>();

        @Override
        public String getName() {
            return "recorder";
        }

        @Override
        public boolean isLoggable(Level level) {
            return true;
        }

        @Override
        public void log(Level level, ResourceBundle bundle, String msg, Throwable thrown) {
            lines.add(msg);
        }

        @Override
        public void log(Level level, ResourceBundle bundle, String format, Object... params) {
            lines.add(params == null || params.length == 0 ? format : java.text.MessageFormat.format(format, params));
        }

        @Override
        public void log(Level level, Supplier<String> msgSupplier) {
            lines.add(msgSupplier.get());
        }
    }

    @Test
    void burstPerWindowThenReportsWhatWasDropped() {
        Recorder r = new Recorder();
        AtomicLong now = new AtomicLong(1_000);
        LogLimiter log = new LogLimiter(r, 3, 100, now::get);
        for (int i = 0; i < 10; i++) {
            log.warn("bad {0}", Integer.toString(i));
        }
        assertEquals(List.of("bad 0", "bad 1", "bad 2"), r.lines);
        now.addAndGet(99);
        log.warn("still quiet");
        assertEquals(3, r.lines.size());
        now.addAndGet(1);
        log.warn("next window");
        assertEquals(4, r.lines.size());
        assertTrue(r.lines.get(3).startsWith("next window"));
        assertTrue(r.lines.get(3).contains("8 similar lines suppressed"), r.lines.get(3));
        assertEquals(8, log.suppressedTotal());
    }
}
