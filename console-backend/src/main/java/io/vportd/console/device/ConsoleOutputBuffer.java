package io.vportd.console.device;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A bounded byte ring, in native memory so the data plane can write it to the host with one
 * system call, for console output that the host side cannot take right now. Console transmit
 * descriptors must be completed at once (the guest spins on them), so bytes that do not fit are
 * dropped here and counted — the only place vportd drops guest bytes, and only for consoles.
 */
final class ConsoleOutputBuffer implements AutoCloseable {

    private final Arena arena = Arena.ofShared();
    private final MemorySegment ring;
    private final int capacity;
    private int head; // next byte to hand out
    private int size;
    private long dropped;

    ConsoleOutputBuffer(int capacity) {
        this.capacity = capacity;
        this.ring = arena.allocate(capacity);
    }

    int size() {
        return size;
    }

    boolean isEmpty() {
        return size == 0;
    }

    long dropped() {
        return dropped;
    }

    int free() {
        return capacity - size;
    }

    /** Appends what fits of src[off, off+len); counts the rest as dropped. Returns bytes kept. */
    int append(byte[] src, int off, int len) {
        int keep = Math.min(len, free());
        int tail = (head + size) % capacity;
        int first = Math.min(keep, capacity - tail);
        MemorySegment.copy(src, off, ring, ValueLayout.JAVA_BYTE, tail, first);
        MemorySegment.copy(src, off + first, ring, ValueLayout.JAVA_BYTE, 0, keep - first);
        size += keep;
        dropped += len - keep;
        return keep;
    }

    /** Contiguous bytes available at {@link #readAddress()}. */
    int contiguous() {
        return Math.min(size, capacity - head);
    }

    /** Native address of the first unread byte. */
    long readAddress() {
        return ring.address() + head;
    }

    /** Copies the next {@code n <= contiguous()} bytes out (tests and fallbacks). */
    void peek(byte[] dst, int off, int n) {
        MemorySegment.copy(ring, ValueLayout.JAVA_BYTE, head, dst, off, n);
    }

    /** Every byte held, oldest first, without consuming them (a live hand-over carries them). */
    byte[] copyAll() {
        byte[] out = new byte[size];
        int first = Math.min(size, capacity - head);
        MemorySegment.copy(ring, ValueLayout.JAVA_BYTE, head, out, 0, first);
        MemorySegment.copy(ring, ValueLayout.JAVA_BYTE, 0, out, first, size - first);
        return out;
    }

    void consumed(int n) {
        head = (head + n) % capacity;
        size -= n;
        if (size == 0) {
            head = 0;
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
