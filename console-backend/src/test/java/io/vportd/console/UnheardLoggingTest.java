package io.vportd.console;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import org.junit.jupiter.api.Test;

class UnheardLoggingTest {

    private static boolean heard() {
        return Logging.HEARD.isLoggable(new LogRecord(Level.INFO, "device reset"));
    }

    @Test
    void linesOfUnheardWorkAndOfTheThreadsItStartsAreDroppedAndNoOthers() throws Exception {
        assertTrue(heard(), "a thread outside unheard work");
        AtomicBoolean inside = new AtomicBoolean(true);
        AtomicBoolean started = new AtomicBoolean(true);
        AtomicBoolean meanwhile = new AtomicBoolean(false);
        java.util.concurrent.CountDownLatch during = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch checked = new java.util.concurrent.CountDownLatch(1);
        Thread bystander = Thread.ofPlatform().start(() -> {
            try {
                during.await();
                meanwhile.set(heard());
                checked.countDown();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        Logging.unheard(() -> {
            inside.set(heard());
            Thread t = Thread.ofPlatform().start(() -> started.set(heard()));
            try {
                t.join();
                during.countDown(); // a thread that was running before the work logs as ever, during it
                checked.await();
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        });
        bystander.join();
        AtomicBoolean after = new AtomicBoolean(false);
        Thread later = Thread.ofPlatform().start(() -> after.set(heard()));
        later.join();
        assertFalse(inside.get(), "the thread running unheard work");
        assertFalse(started.get(), "a thread that work started");
        assertTrue(meanwhile.get(), "another thread while the work ran");
        assertTrue(after.get(), "a thread started after the work");
        assertTrue(heard(), "the calling thread after the work");
    }
}
