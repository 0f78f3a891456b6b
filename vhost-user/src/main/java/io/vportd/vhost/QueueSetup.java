package io.vportd.vhost;

import io.vportd.vring.GuestMemory;

import java.lang.foreign.MemorySegment;

/**
 * Everything a device needs to run one split virtqueue, already checked by the session: the
 * three ring parts are slices of mapped guest memory of exactly the ring's size and with the
 * alignment virtio requires (descriptor table 16 bytes, available ring 2, used ring 4).
 *
 * @param index           queue index, {@code < queueCount()}
 * @param size            queue size, a power of two from 1 to 32768
 * @param desc            descriptor table, {@code 16 * size} bytes
 * @param avail           available ring, {@code 6 + 2 * size} bytes (includes used_event)
 * @param used            used ring, {@code 6 + 8 * size} bytes (includes avail_event)
 * @param firstAvailIndex the next available-ring index to process (SET_VRING_BASE, 0..65535)
 * @param kickFd          eventfd the driver side signals on new buffers; valid until stopQueue
 * @param callFd          eventfd to signal used buffers, or -1 for none; valid until stopQueue
 * @param eventIdx        VIRTIO_RING_F_EVENT_IDX (bit 29) was acknowledged
 * @param memory          the guest memory table the rings were translated with
 */
public record QueueSetup(int index, int size, MemorySegment desc, MemorySegment avail, MemorySegment used,
                         int firstAvailIndex, int kickFd, int callFd, boolean eventIdx, GuestMemory memory) {

    public static final int MAX_SIZE = 32768;

    public static long descBytes(int size) {
        return 16L * size;
    }

    public static long availBytes(int size) {
        return 6L + 2L * size;
    }

    public static long usedBytes(int size) {
        return 6L + 8L * size;
    }
}
