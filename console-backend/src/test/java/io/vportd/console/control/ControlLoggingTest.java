package io.vportd.console.control;

import io.vportd.console.endpoint.EndpointSpec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Guest-caused rejections produce one clear, formatted log line each, rate-limited. */
class ControlLoggingTest {

    private final Logger jul = Logger.getLogger(ControlMachine.class.getName());
    private final List<String> lines = new ArrayList<>();
    private final Handler handler = new Handler() {
        private final SimpleFormatter f = new SimpleFormatter();

        @Override public void publish(LogRecord r) {
            if (r.getLevel().intValue() >= Level.WARNING.intValue()) {
                lines.add(f.formatMessage(r));
            }
        }
        @Override public void flush() { }
        @Override public void close() { }
    };
    private Level oldLevel;
    private boolean oldParent;

    @BeforeEach
    void capture() {
        oldLevel = jul.getLevel();
        oldParent = jul.getUseParentHandlers();
        jul.setLevel(Level.ALL);
        jul.setUseParentHandlers(false);
        jul.addHandler(handler);
    }

    @AfterEach
    void release() {
        jul.removeHandler(handler);
        jul.setLevel(oldLevel);
        jul.setUseParentHandlers(oldParent);
    }

    @Test
    void rejectionsAreLoggedClearlyAndRateLimited() {
        java.util.concurrent.atomic.AtomicLong now = new java.util.concurrent.atomic.AtomicLong();
        ControlMachine m = new ControlMachine(4, ControlListener.NONE, new io.vportd.telemetry.LogLimiter(
                System.getLogger(ControlMachine.class.getName()), 10, 10_000_000_000L, now::get));
        m.addPort(PortConfig.generic(0, new EndpointSpec.Null()));
        m.onGuestMessage(new byte[3], 0, 3);
        byte[] b = new byte[8];
        ControlMessage.encodeHeader(b, 0, 9, ControlMessage.PORT_READY, 1);
        m.onGuestMessage(b, 0, 8);
        ControlMessage.encodeHeader(b, 0, 2, ControlMessage.PORT_OPEN, 1);
        m.onGuestMessage(b, 0, 8);
        assertEquals(3, lines.size(), lines.toString());
        assertTrue(lines.get(0).contains("too short") && lines.get(0).contains("len 3"), lines.get(0));
        assertTrue(lines.get(1).contains("ID_OUT_OF_RANGE") && lines.get(1).contains("PORT_READY id=9"), lines.get(1));
        assertTrue(lines.get(2).contains("unknown port 2"), lines.get(2));
        for (String l : lines) {
            assertFalse(l.contains("{0}") || l.contains("{1}"), l);
        }

        lines.clear();
        for (int i = 0; i < 10_000; i++) {
            m.onGuestMessage(new byte[1], 0, 1);
        }
        // the one limiter: 10 lines per 10 s window, 3 of them used above
        assertEquals(7, lines.size(), lines.size() + " lines for 10000 bad messages");
        assertTrue(lines.getLast().contains("8 so far"), lines.getLast());
        now.addAndGet(10_000_000_000L);
        m.onGuestMessage(new byte[1], 0, 1);
        assertEquals(8, lines.size());
        assertTrue(lines.getLast().contains("10002 so far") && lines.getLast().contains("9993 similar lines suppressed"),
                lines.getLast());
        assertEquals(10_002, m.stats().malformed());
    }
}
