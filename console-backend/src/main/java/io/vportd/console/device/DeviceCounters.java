package io.vportd.console.device;

/** Device-wide counters kept by the data-plane thread (read elsewhere only for reports). */
public final class DeviceCounters {
    volatile long controlTruncated;
    volatile long emergencyWrites;
    volatile long emergencyWritesDropped;
    /** Guest output a port removal could not hand to the host (reported to the remover, logged). */
    volatile long removedUndeliveredBytes;

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
