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

    /** The line, as a SimpleFormatter pattern: {@link DeviceFormatter} makes these lines by hand. */
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
     * data (some 50 ms of a daemon's start, before any socket listens), and each of its lines goes
     * through {@code String.format}, a good part of a 256-device daemon's start, which logs a line
     * per port. Here the line is put together by hand; the first one pays for the time zone.
     */
    static final class DeviceFormatter extends java.util.logging.Formatter {
        @Override
        public String format(java.util.logging.LogRecord record) {
            String message = message(record);
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
            java.time.LocalDateTime at = java.time.LocalDateTime.ofInstant(record.getInstant(), java.time.ZoneId.systemDefault());
            StringBuilder line = new StringBuilder(48 + message.length() + thrown.length());
            digits(line, at.getYear(), 4).append('-');
            digits(line, at.getMonthValue(), 2).append('-');
            digits(line, at.getDayOfMonth(), 2).append(' ');
            digits(line, at.getHour(), 2).append(':');
            digits(line, at.getMinute(), 2).append(':');
            digits(line, at.getSecond(), 2).append('.');
            digits(line, at.getNano() / 1_000_000, 3).append(' ');
            String level = record.getLevel().getLocalizedName();
            line.append(level);
            for (int i = level.length(); i < 7; i++) {
                line.append(' ');
            }
            line.append(' ').append(record.getLoggerName()).append(": ").append(message).append(thrown);
            return line.append(System.lineSeparator()).toString();
        }

        /**
         * The record's message with its parameters in place: {@link #formatMessage} (a
         * {@link java.text.MessageFormat} made for each line), or, for the lines vportd logs
         * most, the same text put together by hand: no resource bundle, plain {@code {N}}
         * placeholders, no quote, and no number or date among the parameters (which MessageFormat
         * would format for the locale), so each parameter is its {@code toString()}.
         */
        private String message(java.util.logging.LogRecord record) {
            String pattern = record.getMessage();
            Object[] params = record.getParameters();
            if (pattern == null || params == null || params.length == 0 || record.getResourceBundle() != null
                    || pattern.indexOf('\'') >= 0) {
                return formatMessage(record);
            }
            for (Object p : params) {
                if (p instanceof Number || p instanceof java.util.Date || p instanceof java.time.temporal.TemporalAccessor) {
                    return formatMessage(record);
                }
            }
            StringBuilder out = new StringBuilder(pattern.length() + 16 * params.length);
            int from = 0;
            for (int open = pattern.indexOf('{'); open >= 0; open = pattern.indexOf('{', from)) {
                int close = open + 1;
                while (close < pattern.length() && close - open <= 2 && Character.isDigit(pattern.charAt(close))) {
                    close++;
                }
                if (close == open + 1 || close >= pattern.length() || pattern.charAt(close) != '}') {
                    return formatMessage(record); // a placeholder with a format type, or a lone brace
                }
                int index = Integer.parseInt(pattern, open + 1, close, 10);
                out.append(pattern, from, open);
                out.append(index < params.length ? String.valueOf(params[index]) : pattern.substring(open, close + 1));
                from = close + 1;
            }
            return out.append(pattern, from, pattern.length()).toString();
        }

        /** {@code value} in at least {@code width} digits, zeros in front (what %tF, %tT and %tL print). */
        private static StringBuilder digits(StringBuilder line, int value, int width) {
            String v = Integer.toString(value);
            for (int i = v.length(); i < width; i++) {
                line.append('0');
            }
            return line.append(v);
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
