package io.vportd.console;

import io.vportd.telemetry.MetricSet;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.Logger;

/**
 * One log line per event on standard error: time, level, logger, message. Lines go through a
 * {@link NonBlockingLogHandler}: no thread but the log writer ever waits for standard error.
 */
final class Logging {

    static final String FORMAT = "%1$tF %1$tT.%1$tL %4$-7s %3$s: %5$s%6$s%n";

    private static volatile NonBlockingLogHandler handler;

    /**
     * The device a thread works for, in a daemon of several devices: its lines say "device ID: ".
     * Inherited, so the threads a device's construction and data plane start (vhost-user, endpoint
     * pumps) carry it too.
     */
    static final InheritableThreadLocal<String> DEVICE = new InheritableThreadLocal<>();
    /**
     * The {@link #DEVICE} of work whose lines nobody should read: a hand-over rehearsal a serving
     * daemon runs on a throw-away device (see {@link #unheard}). Compared by identity.
     */
    @SuppressWarnings("StringOperationCanBeSimplified")
    private static final String UNHEARD = new String("(rehearsal)");

    /**
     * The line {@link java.util.logging.SimpleFormatter} would make with {@link #FORMAT}, with the
     * calling thread's device (if any) before the message. Not a SimpleFormatter: its constructor
     * checks the format against the current time, which loads the time zone rules and the locale's
     * data (some 50 ms of a daemon's start, before any socket listens). Here the first line pays
     * for them, and a daemon logs its first line once it serves.
     */
    static final class DeviceFormatter extends java.util.logging.Formatter {
        @Override
        public String format(java.util.logging.LogRecord record) {
            String message = formatMessage(record);
            String device = DEVICE.get();
            if (device != null && record.getMessage() != null) {
                String prefix = "device " + device + ": ";
                if (!message.startsWith(prefix)) {
                    message = prefix + message;
                }
            }
            String thrown = "";
            if (record.getThrown() != null) {
                java.io.StringWriter w = new java.io.StringWriter();
                try (java.io.PrintWriter p = new java.io.PrintWriter(w)) {
                    p.println();
                    record.getThrown().printStackTrace(p);
                }
                thrown = w.toString();
            }
            java.time.ZonedDateTime at = java.time.ZonedDateTime.ofInstant(record.getInstant(), java.time.ZoneId.systemDefault());
            return String.format(FORMAT, at, "", record.getLoggerName(), record.getLevel().getLocalizedName(), message,
                    thrown);
        }
    }

    private Logging() {
    }

    static void configure(System.Logger.Level level) {
        LogManager.getLogManager().reset();
        Level l = parse(level);
        NonBlockingLogHandler h = new NonBlockingLogHandler(new FileOutputStream(FileDescriptor.err), new DeviceFormatter(),
                NonBlockingLogHandler.DEFAULT_CAPACITY);
        h.setLevel(l);
        h.setFilter(HEARD);
        Logger root = Logger.getLogger("");
        root.addHandler(h);
        root.setLevel(l);
        handler = h;
    }

    /**
     * Runs {@code work} with only warnings and errors logged (a hand-over rehearsal on a throw-away
     * device would otherwise log as if a real device started and reset).
     */
    static void quietly(Runnable work) {
        Logger root = Logger.getLogger("");
        Level before = root.getLevel();
        if (before != null && before.intValue() < Level.WARNING.intValue()) {
            root.setLevel(Level.WARNING);
        }
        try {
            work.run();
        } finally {
            root.setLevel(before);
        }
    }

    /**
     * Runs {@code work} so that nothing it logs is written: not on this thread, nor on the threads
     * it starts (they inherit {@link #DEVICE}), while every other thread logs as before. For a
     * rehearsal on a throw-away device inside a daemon that serves: its lines ("device reset",
     * a frontend "handed over" on a path that does not exist) would read as the daemon's own.
     */
    static void unheard(Runnable work) {
        String before = DEVICE.get();
        DEVICE.set(UNHEARD);
        try {
            work.run();
        } finally {
            DEVICE.set(before);
        }
    }

    /** The daemon's log handler's filter: drops the lines of {@link #unheard} work. */
    static final java.util.logging.Filter HEARD = r -> !isUnheard();

    /** Whether the calling thread works for {@link #unheard} work. */
    static boolean isUnheard() {
        return DEVICE.get() == UNHEARD;
    }

    /** The logger's counters (records dropped, written), or an empty set before {@link #configure}. */
    static MetricSet metrics() {
        NonBlockingLogHandler h = handler;
        return h == null ? new MetricSet() : h.metrics();
    }

    /** Writes out queued lines, waiting a bounded time (orderly shutdown). */
    static void flush() {
        NonBlockingLogHandler h = handler;
        if (h != null) {
            h.flush();
        }
    }

    static Level parse(System.Logger.Level level) {
        return switch (level) {
            case ALL -> Level.ALL;
            case TRACE -> Level.FINEST;
            case DEBUG -> Level.FINE;
            case INFO -> Level.INFO;
            case WARNING -> Level.WARNING;
            case ERROR -> Level.SEVERE;
            case OFF -> Level.OFF;
        };
    }
}
