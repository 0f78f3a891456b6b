package io.vportd.testsupport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class AwaitTest {

    @Test
    void returnsOnceTheConditionHolds() {
        AtomicInteger polls = new AtomicInteger();
        Await.until("the third poll", Duration.ofSeconds(10), () -> polls.incrementAndGet() >= 3);
        assertEquals(3, polls.get());
    }

    @Test
    void returnsTheProbedValue() {
        AtomicInteger polls = new AtomicInteger();
        assertEquals("ready", Await.value("a value", Duration.ofSeconds(10),
                () -> polls.incrementAndGet() < 2 ? Optional.empty() : Optional.of("ready")));
    }

    @Test
    void failsAtTheDeadlineNamingWhatItAwaited() {
        long start = System.nanoTime();
        AssertionError e = assertThrows(AssertionError.class,
                () -> Await.until("the impossible", Duration.ofMillis(50), () -> false));
        assertTrue(System.nanoTime() - start >= Duration.ofMillis(50).toNanos(), "waited the whole timeout");
        assertEquals("timed out after 50 ms waiting for the impossible", e.getMessage());
    }

    @Test
    void anInterruptEndsTheWait() {
        Thread.currentThread().interrupt();
        AssertionError e = assertThrows(AssertionError.class,
                () -> Await.until("nothing", Duration.ofSeconds(10), () -> false));
        assertTrue(Thread.interrupted(), "the interrupt is kept");
        assertEquals("interrupted while waiting for nothing", e.getMessage());
    }
}
