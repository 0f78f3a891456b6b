package io.vportd.console.handover;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Where the new process measures the guest's pause from (the full hand-over is in HandoverServerTest). */
class RestoredTest {

    @Test
    void thePauseStartsWhenTheRingsStopOrElseAtTheFreeze() {
        assertEquals(100, Restored.pauseStart(100, 150), "rings stopped before the freeze");
        assertEquals(150, Restored.pauseStart(0, 150), "a daemon that did not say");
        assertEquals(150, Restored.pauseStart(200, 150), "a time after the freeze is not believed");
        assertEquals(Long.MAX_VALUE - 10, Restored.pauseStart(Long.MAX_VALUE - 10, Long.MIN_VALUE + 10),
                "compared as System.nanoTime differences, across its wrap");
    }
}
