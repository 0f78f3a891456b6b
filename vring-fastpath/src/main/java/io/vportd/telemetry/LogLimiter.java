package io.vportd.telemetry;

import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.text.MessageFormat;
import java.util.function.LongSupplier;

/**
 * The one rate limit for log lines that a guest, a frontend or a host peer can cause: at most
 * {@code burst} lines per window pass; the rest are counted, and the next line that passes says
 * how many similar lines were suppressed. Formats like {@link Logger#log(Level, String, Object...)}
 * ({@code {0}} placeholders). Thread-safe (a short lock, only on these rare paths); never on the
 * per-descriptor path of good input. Use one limiter per source of lines (per ring, per session,
 * per control machine) so that one noisy source does not hide another.
 */
public final class LogLimiter {

    /** The default: 10 lines per 10 seconds. */
    public static final int DEFAULT_BURST = 10;
    public static final long DEFAULT_WINDOW_NANOS = 10_000_000_000L;

    private final Logger logger;
    private final int burst;
    private final long windowNanos;
    private final LongSupplier clock;
    private long windowStart;
    private int inWindow;
    private long suppressed;
    private long suppressedTotal;
    private boolean started;

    public LogLimiter(Logger logger) {
        this(logger, DEFAULT_BURST, DEFAULT_WINDOW_NANOS);
    }

    public LogLimiter(Logger logger, int burst, long windowNanos) {
        this(logger, burst, windowNanos, System::nanoTime);
    }

    public LogLimiter(Logger logger, int burst, long windowNanos, LongSupplier clock) {
        if (burst < 1 || windowNanos < 1) {
            throw new IllegalArgumentException("burst and window must be positive");
        }
        this.logger = logger;
        this.burst = burst;
        this.windowNanos = windowNanos;
        this.clock = clock;
    }

    /** Logs at WARNING unless the window's burst is used up. */
    public void warn(String format, Object... args) {
        log(Level.WARNING, format, args);
    }

    /** Logs at {@code level} unless the window's burst is used up. */
    public void log(Level level, String format, Object... args) {
        long note;
        synchronized (this) {
            long now = clock.getAsLong();
            if (!started || now - windowStart >= windowNanos) {
                started = true;
                windowStart = now;
                inWindow = 0;
            }
            if (inWindow >= burst) {
                suppressed++;
                suppressedTotal++;
                return;
            }
            inWindow++;
            if (!logger.isLoggable(level)) {
                return;
            }
            note = suppressed;
            suppressed = 0;
        }
        // Formatted here (as the logger would) so that handlers see the finished line.
        String text = args == null || args.length == 0 ? format : MessageFormat.format(format, args);
        if (note > 0) {
            text = text + " (" + note + " similar lines suppressed)";
        }
        logger.log(level, text);
    }

    /** Lines suppressed since this limiter was made. */
    public synchronized long suppressedTotal() {
        return suppressedTotal;
    }
}
