package io.vportd.testsupport;

import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * Waiting on conditions with a deadline; never a fixed sleep standing in for a condition. The
 * condition is polled at once, then with a back-off from 10 µs up to {@link #MAX_POLL}; at the
 * deadline an {@link AssertionError} says what was awaited and for how long.
 */
public final class Await {

    /** The longest pause between two polls. */
    public static final Duration MAX_POLL = Duration.ofMillis(1);

    private static final long FIRST_BACKOFF_NANOS = 10_000;

    private Await() {
    }

    /** Polls {@code condition} until it holds; throws {@link AssertionError} naming {@code what} at the deadline. */
    public static void until(String what, Duration timeout, BooleanSupplier condition) {
        value(what, timeout, () -> condition.getAsBoolean() ? Optional.of(Boolean.TRUE) : Optional.empty());
    }

    /** Polls {@code probe} until it yields a value, and returns it; throws {@link AssertionError} at the deadline. */
    public static <T> T value(String what, Duration timeout, Supplier<Optional<T>> probe) {
        long deadline = System.nanoTime() + timeout.toNanos();
        long backoff = FIRST_BACKOFF_NANOS;
        long maxBackoff = MAX_POLL.toNanos();
        while (true) {
            Optional<T> v = probe.get();
            if (v.isPresent()) {
                return v.get();
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new AssertionError("timed out after " + timeout.toMillis() + " ms waiting for " + what);
            }
            LockSupport.parkNanos(Math.min(backoff, left));
            backoff = Math.min(backoff * 2, maxBackoff);
            if (Thread.interrupted()) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted while waiting for " + what);
            }
        }
    }

    /** Nanos left until {@code deadlineNanos} (a {@link System#nanoTime()} value), at least 0. */
    public static long nanosLeft(long deadlineNanos) {
        return Math.max(0, deadlineNanos - System.nanoTime());
    }
}
