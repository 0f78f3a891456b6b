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
    /** Crash-recovery checkpoints the data plane could not take (a descriptor could not be duplicated). */
    final Counter checkpointFailures = metrics.counter("vportd_checkpoint_snapshot_failures_total",
            "Crash-recovery checkpoints of the ports the data plane could not take (a descriptor could not be duplicated).");
    /** Faults (SIGBUS) in guest memory; each ended its session (issue 11.3). */
    final Counter guestMemoryFaults = metrics.counter("vportd_guest_memory_faults_total",
            "Faults in guest memory (a frontend truncated a memory file); each ended its vhost-user session.");
    /** Kick descriptors that failed to drain; each stopped its queue and ended the session. */
    final Counter kickFailures = metrics.counter("vportd_kick_failures_total",
            "Kick descriptors that failed to drain; each stopped its queue and ended its session.");
    /** Interrupts not written because the call eventfd's counter was at its maximum (EAGAIN). */
    final Counter callsSaturated = metrics.counter("vportd_calls_saturated_total",
            "Guest interrupts not written because the call eventfd counter was at its maximum.");

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

    public long guestMemoryFaults() {
        return guestMemoryFaults.get();
    }

    public long kickFailures() {
        return kickFailures.get();
    }

    public long callsSaturated() {
        return callsSaturated.get();
    }
}
