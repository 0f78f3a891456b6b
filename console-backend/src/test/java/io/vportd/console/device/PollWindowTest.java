package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The adaptive poll's decision (--poll-us), on a clock the test moves. */
class PollWindowTest {

    @Test
    void afterWorkItPollsForTheWindowThenSleeps() {
        PollWindow w = new PollWindow();
        w.setMicros(50);
        assertEquals(1000, w.timeoutMillis(1000, 0), "no work yet: sleep");
        w.worked(1_000);
        assertEquals(0, w.timeoutMillis(1000, 1_000));
        assertEquals(0, w.timeoutMillis(1000, 50_999), "inside the window: poll");
        assertTrue(w.isOpen());
        assertEquals(1000, w.timeoutMillis(1000, 51_000), "the window is over: sleep in epoll");
        assertFalse(w.isOpen());
        assertEquals(1000, w.timeoutMillis(1000, 51_001), "and it stays closed until work comes");
    }

    @Test
    void workInsideTheWindowStartsItAgain() {
        PollWindow w = new PollWindow();
        w.setMicros(10);
        w.worked(0);
        w.worked(9_000);
        assertEquals(0, w.timeoutMillis(5, 18_999));
        assertEquals(5, w.timeoutMillis(5, 19_000));
    }

    @Test
    void waitingWorkIsNeverLeftForASleep() {
        PollWindow w = new PollWindow();
        w.setMicros(10);
        assertEquals(0, w.timeoutMillis(0, 0), "work marked: no wait, window or not");
        w.worked(0);
        assertEquals(0, w.timeoutMillis(0, 1_000_000));
        w.setMicros(0);
        assertEquals(0, w.timeoutMillis(0, 5));
    }

    @Test
    void aFewBytesOpenTheWindowAPageOrMoreCloseItNoneLeaveIt() {
        PollWindow w = new PollWindow();
        w.setMicros(100);
        w.moved(0, 0);
        assertFalse(w.isOpen(), "nothing moved: still closed");
        w.moved(64, 1_000);
        assertTrue(w.isOpen(), "a reply's worth opens it");
        assertEquals(0, w.timeoutMillis(1000, 100_999));
        w.moved(0, 50_000);
        assertTrue(w.isOpen(), "a cycle that moved nothing leaves it open");
        assertEquals(1000, w.timeoutMillis(1000, 101_000), "nor does it extend it");
        w.moved(PollWindow.SMALL_BYTES - 1, 200_000);
        assertEquals(0, w.timeoutMillis(1000, 250_000));
        w.moved(PollWindow.SMALL_BYTES, 250_000);
        assertFalse(w.isOpen(), "a page or more is bulk: sleep");
        assertEquals(1000, w.timeoutMillis(1000, 250_001));
        w.setMicros(0);
        w.moved(64, 300_000);
        assertFalse(w.isOpen(), "off stays off");
    }

    @Test
    void zeroDisablesIt() {
        PollWindow w = new PollWindow();
        w.setMicros(0);
        w.worked(0);
        assertFalse(w.isOpen());
        assertEquals(1, w.timeoutMillis(1, 0));
        w.setMicros(20);
        w.worked(0);
        w.setMicros(0);
        assertEquals(1, w.timeoutMillis(1, 1), "switching it off closes an open window");
        assertThrows(IllegalArgumentException.class, () -> w.setMicros(-1));
        assertThrows(IllegalArgumentException.class, () -> w.setMicros(PollWindow.MAX_MICROS + 1));
    }
}
