package io.vportd.console.device;

/** Device-wide counters kept by the data-plane thread (read elsewhere only for reports). */
public final class DeviceCounters {
    volatile long controlTruncated;
    volatile long emergencyWrites;
    volatile long emergencyWritesDropped;
    /** Guest output a port removal could not hand to the host (reported to the remover, logged). */
    volatile long removedUndeliveredBytes;
    /** Faults (SIGBUS) in guest memory; each ended its session (issue 11.3). */
    volatile long guestMemoryFaults;
    /** Kick descriptors that failed to drain; each stopped its queue and ended the session. */
    volatile long kickFailures;
    /** Interrupts not written because the call eventfd's counter was at its maximum (EAGAIN). */
    volatile long callsSaturated;

    public long guestMemoryFaults() {
        return guestMemoryFaults;
    }

    public long kickFailures() {
        return kickFailures;
    }

    public long callsSaturated() {
        return callsSaturated;
    }

    public long removedUndeliveredBytes() {
        return removedUndeliveredBytes;
    }

    public long controlTruncated() {
        return controlTruncated;
    }

    public long emergencyWrites() {
        return emergencyWrites;
    }

    public long emergencyWritesDropped() {
        return emergencyWritesDropped;
    }
}
