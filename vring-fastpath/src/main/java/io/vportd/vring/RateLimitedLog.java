package io.vportd.vring;

import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.util.function.LongSupplier;

/**
 * Lets at most {@code burst} lines through per {@code windowNanos}; counts the rest and mentions
 * how many were dropped in the next line that passes. Only for bad-input paths: it formats
 * strings. Not thread-safe: one per ring worker (or per vhost-user server thread).
 */
public final class RateLimitedLog {

    private final Logger logger;
    private final int burst;
    private final long windowNanos;
    private long windowStart;
    private int inWindow;
    private long dropped;
    private boolean started;

    private final LongSupplier clock;

    public RateLimitedLog(Logger logger, int burst, long windowNanos) {
        this(logger, burst, windowNanos, System::nanoTime);
    }

    RateLimitedLog(Logger logger, int burst, long windowNanos, LongSupplier clock) {
        this.logger = logger;
        this.burst = burst;
        this.windowNanos = windowNanos;
        this.clock = clock;
    }

    void warn(String format, Object... args) {
        log(Level.WARNING, format, args);
    }

    /** Logs a {@link String#format} line at {@code level} unless the window's burst is used up. */
    public void log(Level level, String format, Object... args) {
        long now = clock.getAsLong();
        if (!started || now - windowStart >= windowNanos) {
            started = true;
            windowStart = now;
            inWindow = 0;
        }
        if (inWindow >= burst) {
            dropped++;
            return;
        }
        inWindow++;
        if (!logger.isLoggable(level)) {
            return;
        }
        String text = String.format(format, args);
        if (dropped > 0) {
            text = text + " (" + dropped + " similar lines suppressed)";
            dropped = 0;
        }
        logger.log(level, text);
    }
}
