package io.vportd.vring;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A reusable view of one popped descriptor chain as host memory segments, plus a native
 * {@code struct iovec} array for {@code readv}/{@code writev} straight from/to guest memory.
 *
 * <p>All storage is allocated once, at construction: {@link SplitQueue#pop(Chain)} refills the
 * same instance for every chain, so the data path allocates nothing. A chain whose descriptor
 * crosses from one guest memory region into the next holds one segment per region piece, and each
 * piece counts against the capacity.
 *
 * <p>The iovec array has a cursor for partial transfers: {@link #iovAddress()} and
 * {@link #iovCount()} describe what is left, {@link #advance(long)} consumes bytes a partial
 * {@code readv}/{@code writev} did. The copy helpers ({@link #copyOut}, {@link #copyIn}) work on
 * chain offsets and ignore the cursor.
 *
 * <p>Not thread-safe: owned by one ring worker. The native array lives in an arena the chain owns;
 * {@link #close()} frees it, after which the chain must not be used.
 */
public final class Chain implements AutoCloseable {

    /** Size of {@code struct iovec} on LP64 Linux. */
    static final int IOVEC_SIZE = 16;
    private static final ValueLayout.OfLong IOV_WORD = ValueLayout.JAVA_LONG;

    private final int capacity;
    private final Arena arena;
    private final MemorySegment iov;
    private final long iovBase;

    private final MemorySegment[] segMapping;
    private final long[] segOffset;
    private final long[] segAddress;
    private final int[] segLength;

    private int head = -1;
    private int ringSlots;
    private int count;
    private long total;
    private boolean writable;

    private int iovStart;
    private long remaining;

    /**
     * @param capacity most host segments one chain may need; normally the queue size
     * @throws IllegalArgumentException when capacity is not in 1..32768*2
     */
    public Chain(int capacity) {
        if (capacity < 1 || capacity > 2 * SplitQueue.MAX_SIZE) {
            throw new IllegalArgumentException("chain capacity out of range: " + capacity);
        }
        this.capacity = capacity;
        this.arena = Arena.ofShared();
        this.iov = arena.allocate((long) capacity * IOVEC_SIZE, 16);
        this.iovBase = iov.address();
        this.segMapping = new MemorySegment[capacity];
        this.segOffset = new long[capacity];
        this.segAddress = new long[capacity];
        this.segLength = new int[capacity];
    }

    /** Most segments this chain holds. */
    public int capacity() {
        return capacity;
    }

    /** Head descriptor index of the chain last popped into this view, -1 if none. */
    public int head() {
        return head;
    }

    /**
     * Descriptor-table entries of the ring the chain occupies (an indirect chain occupies one,
     * however long its table): what the driver gets back when the chain is completed.
     */
    public int ringSlots() {
        return ringSlots;
    }

    /** Number of host segments (zero-length descriptors contribute none). */
    public int segmentCount() {
        return count;
    }

    /** Host address of segment {@code i}. */
    public long hostAddress(int i) {
        checkIndex(i);
        return segAddress[i];
    }

    /** Length of segment {@code i} in bytes. */
    public int length(int i) {
        checkIndex(i);
        return segLength[i];
    }

    /** Bounds-checked view of segment {@code i} (allocates a slice object: not for per-byte loops). */
    public MemorySegment segment(int i) {
        checkIndex(i);
        return segMapping[i].asSlice(segOffset[i], segLength[i]);
    }

    /** Sum of all segment lengths, at most {@link Integer#MAX_VALUE}. */
    public long totalLength() {
        return total;
    }

    /** True when the chain is device-writable (a receive queue's chain). */
    public boolean isWritable() {
        return writable;
    }

    // ---- iovec cursor ----

    /** Address of the first iovec not yet fully transferred (valid while {@link #iovCount()} > 0). */
    public long iovAddress() {
        return iovBase + (long) iovStart * IOVEC_SIZE;
    }

    /** The iovecs left, as a bounds-checked view of the native array (for tests and diagnostics). */
    public MemorySegment iovecs() {
        return iov.asSlice((long) iovStart * IOVEC_SIZE, (long) (count - iovStart) * IOVEC_SIZE);
    }

    /** Number of iovecs left, starting at {@link #iovAddress()}. */
    public int iovCount() {
        return count - iovStart;
    }

    /** Bytes not yet consumed by {@link #advance(long)}. */
    public long remaining() {
        return remaining;
    }

    /** Bytes consumed so far by {@link #advance(long)}. */
    public long transferred() {
        return total - remaining;
    }

    /**
     * Records that a {@code readv}/{@code writev} over the remaining iovecs moved {@code bytes}
     * bytes: fully-done iovecs are skipped and a partially-done one is shortened in place.
     *
     * @return bytes still to transfer
     * @throws IllegalArgumentException if bytes is negative or more than {@link #remaining()}
     *         (a caller bug, not guest input)
     */
    public long advance(long bytes) {
        if (bytes < 0 || bytes > remaining) {
            throw new IllegalArgumentException("advance " + bytes + " with " + remaining + " remaining");
        }
        remaining -= bytes;
        int i = iovStart;
        while (bytes > 0) {
            long at = (long) i * IOVEC_SIZE;
            long len = iov.get(IOV_WORD, at + 8);
            if (bytes >= len) {
                bytes -= len;
                i++;
            } else {
                iov.set(IOV_WORD, at, iov.get(IOV_WORD, at) + bytes);
                iov.set(IOV_WORD, at + 8, len - bytes);
                bytes = 0;
            }
        }
        // Skip any now-leading iovecs of length 0 (cannot happen for chains we built, but keep it exact).
        while (i < count && iov.get(IOV_WORD, (long) i * IOVEC_SIZE + 8) == 0) {
            i++;
        }
        iovStart = i;
        return remaining;
    }

    /**
     * Copies the iovecs left (from {@link #iovAddress()}, {@link #iovCount()} of them) into
     * {@code dst} at iovec index {@code dstIndex}, for one {@code readv}/{@code writev} over
     * several chains. Allocates nothing.
     *
     * @throws IndexOutOfBoundsException when {@code dst} has no room for them
     */
    public void copyIovecsTo(MemorySegment dst, int dstIndex) {
        int n = count - iovStart;
        MemorySegment.copy(iov, (long) iovStart * IOVEC_SIZE, dst, (long) dstIndex * IOVEC_SIZE, (long) n * IOVEC_SIZE);
    }

    /** Rewinds the iovec cursor to the whole chain (rewrites the array from the segment table). */
    public void rewind() {
        for (int i = 0; i < count; i++) {
            long at = (long) i * IOVEC_SIZE;
            iov.set(IOV_WORD, at, segAddress[i]);
            iov.set(IOV_WORD, at + 8, segLength[i]);
        }
        iovStart = 0;
        remaining = total;
    }

    // ---- copy helpers for small messages ----

    /**
     * Copies up to {@code len} bytes of the chain, starting at chain offset {@code chainOffset},
     * into {@code dst[off..]}.
     *
     * @return bytes copied: {@code min(len, totalLength() - chainOffset)}, 0 past the end
     */
    public int copyOut(long chainOffset, byte[] dst, int off, int len) {
        java.util.Objects.checkFromIndexSize(off, len, dst.length);
        if (chainOffset < 0) {
            throw new IllegalArgumentException("negative chain offset " + chainOffset);
        }
        int done = 0;
        long skip = chainOffset;
        for (int i = 0; i < count && done < len; i++) {
            int sl = segLength[i];
            if (skip >= sl) {
                skip -= sl;
                continue;
            }
            int n = (int) Math.min(sl - skip, len - done);
            MemorySegment.copy(segMapping[i], ValueLayout.JAVA_BYTE, segOffset[i] + skip, dst, off + done, n);
            done += n;
            skip = 0;
        }
        return done;
    }

    /** Copies {@code src[off..off+len)} into the start of a writable chain; see {@link #copyIn(long, byte[], int, int)}. */
    public int copyIn(byte[] src, int off, int len) {
        return copyIn(0, src, off, len);
    }

    /**
     * Copies up to {@code len} bytes from {@code src[off..]} into a writable chain at chain offset
     * {@code chainOffset}.
     *
     * @return bytes copied: {@code min(len, totalLength() - chainOffset)}, 0 past the end
     * @throws IllegalStateException if the chain is device-readable (the guest did not offer it for writing)
     */
    public int copyIn(long chainOffset, byte[] src, int off, int len) {
        java.util.Objects.checkFromIndexSize(off, len, src.length);
        if (!writable) {
            throw new IllegalStateException("chain is not device-writable");
        }
        if (chainOffset < 0) {
            throw new IllegalArgumentException("negative chain offset " + chainOffset);
        }
        int done = 0;
        long skip = chainOffset;
        for (int i = 0; i < count && done < len; i++) {
            int sl = segLength[i];
            if (skip >= sl) {
                skip -= sl;
                continue;
            }
            int n = (int) Math.min(sl - skip, len - done);
            MemorySegment.copy(src, off + done, segMapping[i], ValueLayout.JAVA_BYTE, segOffset[i] + skip, n);
            done += n;
            skip = 0;
        }
        return done;
    }

    /** Frees the native iovec array. */
    @Override
    public void close() {
        arena.close();
    }

    @Override
    public String toString() {
        return "Chain[head=" + head + ", segments=" + count + ", total=" + total
                + (writable ? ", writable" : ", readable") + ", remaining=" + remaining + "]";
    }

    // ---- filled by SplitQueue ----

    void reset(int head, boolean writable) {
        this.head = head;
        this.writable = writable;
        this.ringSlots = 0;
        this.count = 0;
        this.total = 0;
        this.iovStart = 0;
        this.remaining = 0;
    }

    /** Adds one segment; the caller has checked {@code count < capacity} and the bounds. */
    void add(MemorySegment mapping, long offset, int length) {
        int i = count;
        long address = mapping.address() + offset;
        segMapping[i] = mapping;
        segOffset[i] = offset;
        segAddress[i] = address;
        segLength[i] = length;
        long at = (long) i * IOVEC_SIZE;
        iov.set(IOV_WORD, at, address);
        iov.set(IOV_WORD, at + 8, length);
        count = i + 1;
        total += length;
        remaining = total;
    }

    void ringSlots(int slots) {
        this.ringSlots = slots;
    }

    boolean isFull() {
        return count == capacity;
    }

    /** Marks the view empty after a bad chain (the head stays for diagnostics). */
    void clearSegments() {
        for (int i = 0; i < count; i++) {
            segMapping[i] = null;
        }
        count = 0;
        total = 0;
        remaining = 0;
        iovStart = 0;
    }

    private void checkIndex(int i) {
        if (i < 0 || i >= count) {
            throw new IndexOutOfBoundsException("segment " + i + " of " + count);
        }
    }
}
