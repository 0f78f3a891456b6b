package io.vportd.console.portlog;

import java.nio.charset.StandardCharsets;
import java.time.LocalDateTime;
import java.time.ZoneOffset;

/**
 * RFC 3339 UTC stamps with milliseconds, {@code 2026-11-29T08:00:00.123Z } (with the trailing
 * space), never going backwards: a wall clock stepped back repeats the last stamp instead. The
 * date part is formatted once per second. Not thread-safe (one per log writer).
 */
final class Rfc3339 {

    static final int LENGTH = 25;
    private final byte[] stamp = new byte[LENGTH];
    private long second = Long.MIN_VALUE;
    private long last = Long.MIN_VALUE;

    /** The stamp for {@code epochMillis} (or for the latest earlier-stamped time, if later); reused buffer. */
    byte[] stamp(long epochMillis) {
        long ms = Math.max(epochMillis, last);
        last = ms;
        long s = Math.floorDiv(ms, 1000);
        if (s != second) {
            second = s;
            LocalDateTime t = LocalDateTime.ofEpochSecond(s, 0, ZoneOffset.UTC);
            String head = String.format("%04d-%02d-%02dT%02d:%02d:%02d.", t.getYear(), t.getMonthValue(),
                    t.getDayOfMonth(), t.getHour(), t.getMinute(), t.getSecond());
            byte[] h = head.getBytes(StandardCharsets.US_ASCII);
            System.arraycopy(h, 0, stamp, 0, 20);
            stamp[23] = 'Z';
            stamp[24] = ' ';
        }
        int milli = (int) Math.floorMod(ms, 1000);
        stamp[20] = (byte) ('0' + milli / 100);
        stamp[21] = (byte) ('0' + milli / 10 % 10);
        stamp[22] = (byte) ('0' + milli % 10);
        return stamp;
    }
}
