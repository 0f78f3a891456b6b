package io.vportd.console.portlog;

import java.nio.file.Path;

/**
 * What a port records of its guest output besides sending it to its endpoint: a log file (with
 * size rotation and optional timestamps) or the systemd journal, and a replay ring for host
 * clients that connect late. Spelled in a port spec as {@code log=PATH|journal}, {@code log-max=SIZE},
 * {@code log-keep=N}, {@code log-timestamps}, {@code replay=SIZE}.
 *
 * @param path        the log file, or null (no file)
 * @param journal     true to send the output to the systemd journal instead of a file
 * @param maxBytes    size at which the log file is rotated
 * @param keep        rotated files kept (PATH.1 .. PATH.keep)
 * @param timestamps  prefix each line with an RFC 3339 UTC time
 * @param replayBytes size of the replay ring (0 = none)
 */
public record LogSpec(Path path, boolean journal, long maxBytes, int keep, boolean timestamps, int replayBytes) {

    /** Replay ring of a console unless the spec says otherwise (the boot log for a late client). */
    public static final int CONSOLE_REPLAY_DEFAULT = 64 * 1024;
    /** Largest replay ring a port may have (it is kept in memory per port). */
    public static final int MAX_REPLAY = 1024 * 1024;
    /** Smallest log-max: below this a file would hold a handful of lines. */
    public static final long MIN_LOG_MAX = 4096;
    /** log-max unless given: the log is bounded by default. */
    public static final long DEFAULT_LOG_MAX = 16L * 1024 * 1024;
    public static final int DEFAULT_KEEP = 4;
    public static final int MAX_KEEP = 1000;

    /** No log, no replay. */
    public static final LogSpec NONE = new LogSpec(null, false, DEFAULT_LOG_MAX, DEFAULT_KEEP, false, 0);
    /** A console's default: no log, the default replay ring. */
    public static final LogSpec CONSOLE = new LogSpec(null, false, DEFAULT_LOG_MAX, DEFAULT_KEEP, false,
            CONSOLE_REPLAY_DEFAULT);

    public LogSpec {
        if (path != null && journal) {
            throw new IllegalArgumentException("log: a file and the journal at once");
        }
        if (maxBytes < MIN_LOG_MAX) {
            throw new IllegalArgumentException("log-max must be at least " + MIN_LOG_MAX + " bytes, got " + maxBytes);
        }
        if (keep < 1 || keep > MAX_KEEP) {
            throw new IllegalArgumentException("log-keep must be 1.." + MAX_KEEP + ", got " + keep);
        }
        if (replayBytes < 0 || replayBytes > MAX_REPLAY) {
            throw new IllegalArgumentException("replay must be 0.." + MAX_REPLAY + " bytes, got " + replayBytes);
        }
    }

    /** The default for a port: consoles get a replay ring, other ports nothing. */
    public static LogSpec defaults(boolean console) {
        return console ? CONSOLE : NONE;
    }

    /** True when the guest output goes to a file or the journal. */
    public boolean logs() {
        return path != null || journal;
    }

    /** True when anything taps the port's output (a log or a replay ring). */
    public boolean active() {
        return logs() || replayBytes > 0;
    }

    /**
     * The effective settings as port-spec items, for listings: {@code log=PATH,log-max=..,log-keep=..}
     * (with {@code log-timestamps}), {@code log=journal}, {@code replay=N}; null when nothing is recorded.
     */
    public String describe() {
        StringBuilder b = new StringBuilder();
        if (journal) {
            b.append(",log=journal");
        } else if (path != null) {
            b.append(",log=").append(path).append(",log-max=").append(maxBytes).append(",log-keep=").append(keep);
            if (timestamps) {
                b.append(",log-timestamps");
            }
        }
        if (replayBytes > 0) {
            b.append(",replay=").append(replayBytes);
        }
        return b.isEmpty() ? null : b.substring(1);
    }

    /**
     * Parses a size: digits with an optional binary suffix K, M or G (also KiB, MiB, GiB).
     *
     * @return the size, or -1 when the text is not a size or exceeds {@code max}
     */
    public static long parseSize(String text, long max) {
        if (text == null || text.isEmpty()) {
            return -1;
        }
        String t = text;
        long unit = 1;
        String upper = t.toUpperCase(java.util.Locale.ROOT);
        for (String[] s : new String[][] {{"KIB", "1024"}, {"MIB", "1048576"}, {"GIB", "1073741824"},
                {"K", "1024"}, {"M", "1048576"}, {"G", "1073741824"}}) {
            if (upper.endsWith(s[0])) {
                unit = Long.parseLong(s[1]);
                t = t.substring(0, t.length() - s[0].length());
                break;
            }
        }
        if (t.isEmpty() || t.length() > 12) {
            return -1;
        }
        long v = 0;
        for (int i = 0; i < t.length(); i++) {
            char c = t.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            v = v * 10 + (c - '0');
        }
        if (v > max / unit) {
            return -1;
        }
        return v * unit;
    }
}
