package io.vportd.console.device;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Per-port counters: written by the data-plane thread only, read by anyone (listings, metrics)
 * with opaque reads, so no locks and no allocation on the data path.
 */
public final class PortCounters {

    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);

    public static final int BYTES_TO_HOST = 0;
    public static final int CHAINS_TO_HOST = 1;
    public static final int BYTES_TO_GUEST = 2;
    public static final int CHAINS_TO_GUEST = 3;
    public static final int CONSOLE_DROPPED_BYTES = 4;
    public static final int DISCARDED_BYTES = 5;
    public static final int HOST_WRITE_ERRORS = 6;
    public static final int HELD_WAITS = 7;
    private static final int COUNT = 8;

    private final long[] values = new long[COUNT];

    void add(int which, long n) {
        LONGS.setOpaque(values, which, (long) LONGS.getOpaque(values, which) + n);
    }

    public long get(int which) {
        return (long) LONGS.getOpaque(values, which);
    }
}
