package io.vportd.vring;

/**
 * Which way data flows through every descriptor of a queue. A virtio-console queue is one-way:
 * transmit queues carry guest output (the device only reads), receive queues carry input for the
 * guest (the device only writes). A descriptor of the other kind makes its chain bad.
 */
public enum Direction {
    /** Transmit queue (guest to device): every descriptor must be device-readable (no WRITE flag). */
    DEVICE_READS,
    /** Receive queue (device to guest): every descriptor must be device-writable (WRITE flag set). */
    DEVICE_WRITES
}
