package io.vportd.console.device;

/** Device-wide counters kept by the data-plane thread (read elsewhere only for reports). */
public final class DeviceCounters {
    volatile long controlTruncated;
    volatile long emergencyWrites;
    volatile long emergencyWritesDropped;

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
