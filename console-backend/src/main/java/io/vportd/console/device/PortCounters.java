package io.vportd.console.device;

import io.vportd.telemetry.Counter;
import io.vportd.telemetry.MetricSet;

/**
 * Per-port counters: written by the data-plane thread only, read by anyone (listings, metrics)
 * ({@link Counter} semantics: no locks and no allocation on the data path). The data plane
 * registers {@link #metrics()} with the port's labels while the port exists.
 */
public final class PortCounters {

    public static final int BYTES_TO_HOST = 0;
    public static final int CHAINS_TO_HOST = 1;
    public static final int BYTES_TO_GUEST = 2;
    public static final int CHAINS_TO_GUEST = 3;
    public static final int CONSOLE_DROPPED_BYTES = 4;
    public static final int DISCARDED_BYTES = 5;
    public static final int HOST_WRITE_ERRORS = 6;
    public static final int HELD_WAITS = 7;
    public static final int LOG_DROPPED_BYTES = 8;
    public static final int LOG_FOLLOWERS_DROPPED = 9;
    private static final int COUNT = 10;

    private final MetricSet metrics = new MetricSet();
    private final Counter[] values = new Counter[COUNT];

    public PortCounters() {
        String bytes = "Bytes moved by a port, by direction.";
        values[BYTES_TO_HOST] = metrics.counter("vportd_port_bytes_total", bytes, "direction", "to_host");
        values[BYTES_TO_GUEST] = metrics.counter("vportd_port_bytes_total", bytes, "direction", "to_guest");
        values[CHAINS_TO_HOST] = metrics.counter("vportd_port_chains_to_host_total", "Guest buffers completed toward the host.");
        values[CHAINS_TO_GUEST] = metrics.counter("vportd_port_chains_to_guest_total", "Host data buffers handed to the guest.");
        values[HELD_WAITS] = metrics.counter("vportd_port_held_waits_total",
                "Times a port held a guest buffer because the host was not ready (back-pressure).");
        values[CONSOLE_DROPPED_BYTES] = metrics.counter("vportd_port_console_dropped_bytes_total",
                "Console output dropped because the host was too slow and the backlog was full.");
        values[DISCARDED_BYTES] = metrics.counter("vportd_port_discarded_bytes_total", "Guest output thrown away by a null endpoint.");
        values[LOG_DROPPED_BYTES] = metrics.counter("vportd_port_log_dropped_bytes_total",
                "Guest output not written to the port's log because its writer fell behind (a marker line says how much).");
        values[LOG_FOLLOWERS_DROPPED] = metrics.counter("vportd_port_log_followers_dropped_total",
                "ctl log --follow clients dropped because they did not keep up with the port's output.");
        values[HOST_WRITE_ERRORS] = metrics.counter("vportd_port_host_write_errors_total", "Failed writes to the host endpoint.");
    }

    void add(int which, long n) {
        values[which].add(n);
    }

    /** Every value, in index order (a live hand-over carries them). */
    long[] values() {
        long[] out = new long[COUNT];
        for (int i = 0; i < COUNT; i++) {
            out[i] = values[i].get();
        }
        return out;
    }

    /** Adds the values a previous process had (see {@link #values}); extra or missing entries are ignored. */
    void carry(long[] from) {
        for (int i = 0; i < Math.min(COUNT, from.length); i++) {
            if (from[i] > 0) {
                values[i].add(from[i]);
            }
        }
    }

    public long get(int which) {
        return values[which].get();
    }

    /** These counters, to register with the port's labels. */
    public MetricSet metrics() {
        return metrics;
    }
}
