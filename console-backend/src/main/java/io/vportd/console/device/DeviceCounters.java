package io.vportd.console.device;

import io.vportd.telemetry.Counter;
import io.vportd.telemetry.MetricSet;

/** Device-wide counters kept by the data-plane thread (read by any thread; all in {@link #metrics()}). */
public final class DeviceCounters {

    private final MetricSet metrics = new MetricSet();
    final Counter controlTruncated = metrics.counter("vportd_control_truncated_total",
            "Guest control buffers too small for the next message, given back empty (the message waits).");
    final Counter emergencyWrites = metrics.counter("vportd_emergency_writes_total", "Characters written through emerg_wr.");
    final Counter emergencyWritesDropped = metrics.counter("vportd_emergency_writes_dropped_total",
            "emerg_wr characters with no console port to go to.");
    /** Guest output a port removal could not hand to the host (reported to the remover, logged). */
    final Counter removedUndeliveredBytes = metrics.counter("vportd_removed_undelivered_bytes_total",
            "Guest output a port removal could not hand to the host (reported to the remover).");

    /** These counters, to register with the metric registry. */
    public MetricSet metrics() {
        return metrics;
    }

    public long removedUndeliveredBytes() {
        return removedUndeliveredBytes.get();
    }

    public long controlTruncated() {
        return controlTruncated.get();
    }

    public long emergencyWrites() {
        return emergencyWrites.get();
    }

    public long emergencyWritesDropped() {
        return emergencyWritesDropped.get();
    }
}
