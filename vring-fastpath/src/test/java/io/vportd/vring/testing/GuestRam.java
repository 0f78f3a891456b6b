package io.vportd.vring.testing;

import io.vportd.vring.GuestMemory;
import io.vportd.vring.GuestRegion;
import io.vportd.vring.testing.RingDriver.Buffer;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Test guest RAM: one or more regions allocated in an arena, with a {@link GuestMemory} over
 * them and a bump allocator. Several {@link RingDriver}s can share one (a device with many
 * queues sees one memory table). Region guest physical addresses start at {@link #GPA_BASE}
 * and are contiguous, so a buffer may span two regions; frontend virtual addresses start at
 * {@link #USER_BASE} with gaps between regions; the host mappings are separate allocations.
 * The three address spaces all differ, so a translation mix-up shows.
 */
public final class GuestRam implements AutoCloseable {

    /** Guest physical address of the first byte of guest memory. */
    public static final long GPA_BASE = 0x1_4000_0000L;
    /** Frontend (QEMU) virtual address of the first byte of guest memory. */
    public static final long USER_BASE = 0x7f3a_1200_0000L;
    private static final long USER_GAP = 0x10_0000L;

    private final Arena arena;
    private final MemorySegment[] mappings;
    private final long regionSize;
    private final GuestMemory memory;
    private long bump;

    /**
     * @param bytes   guest memory in total (rounded up to 4 KiB per region)
     * @param regions number of regions it is split into, evenly
     */
    public GuestRam(long bytes, int regions) {
        if (regions < 1 || bytes < regions) {
            throw new IllegalArgumentException(bytes + " bytes in " + regions + " regions");
        }
        this.regionSize = align(bytes / regions, 4096);
        this.arena = Arena.ofShared();
        this.mappings = new MemorySegment[regions];
        List<GuestRegion> list = new ArrayList<>();
        for (int k = 0; k < regions; k++) {
            mappings[k] = arena.allocate(regionSize, 4096);
            list.add(new GuestRegion(GPA_BASE + k * regionSize, regionSize,
                    USER_BASE + k * (regionSize + USER_GAP), mappings[k]));
        }
        this.memory = GuestMemory.of(list);
    }

    static long align(long v, long a) {
        return (v + a - 1) & -a;
    }

    public GuestMemory memory() {
        return memory;
    }

    public long regionSize() {
        return regionSize;
    }

    public int regionCount() {
        return mappings.length;
    }

    /** First guest physical address past guest memory. */
    public long memoryEnd() {
        return GPA_BASE + regionSize * mappings.length;
    }

    /** Bytes the bump allocator has left. */
    public long bytesFree() {
        return regionSize * mappings.length - bump;
    }

    /** Allocates {@code len} bytes, 8-byte aligned; may span regions. */
    public Buffer allocate(int len) {
        return allocate(len, 8);
    }

    /** Allocates {@code len} bytes with the given alignment; may span regions. */
    public Buffer allocate(int len, int alignment) {
        long at = align(bump, alignment);
        if (at + len > regionSize * mappings.length) {
            throw new IllegalStateException("guest memory exhausted: " + len + " bytes at " + at);
        }
        bump = at + len;
        return new Buffer(GPA_BASE + at, len);
    }

    /** Allocates {@code len} bytes that do not cross a region boundary (rings, indirect tables). */
    public Buffer allocateWithinRegion(long len, int alignment) {
        if (len > regionSize) {
            throw new IllegalArgumentException(len + " bytes do not fit a region of " + regionSize);
        }
        long at = align(bump, alignment);
        if (at / regionSize != (at + len - 1) / regionSize) {
            at = align((at / regionSize + 1) * regionSize, alignment);
        }
        if (at + len > regionSize * mappings.length) {
            throw new IllegalStateException("guest memory exhausted: " + len + " bytes at " + at);
        }
        bump = at + len;
        return new Buffer(GPA_BASE + at, (int) len);
    }

    /**
     * A buffer of {@code len} bytes ending exactly at the end of region {@code k}, shifted
     * {@code over} bytes into the next region when {@code over > 0} (spanning and out-of-range
     * tests). Not taken from the allocator.
     */
    public Buffer bufferAtRegionEnd(int k, int len, int over) {
        long end = GPA_BASE + (k + 1) * regionSize;
        return new Buffer(end - len + over, len);
    }

    /** Frontend virtual address of guest physical {@code gpa}. */
    public long userAddr(long gpa) {
        long off = gpa - GPA_BASE;
        int k = (int) (off / regionSize);
        return USER_BASE + k * (regionSize + USER_GAP) + off % regionSize;
    }

    /** A view of guest [gpa, gpa+len) that lies inside one region. */
    public MemorySegment slice(long gpa, long len) {
        MemorySegment s = memory.sliceGuest(gpa, len);
        if (s == null) {
            throw new IllegalArgumentException(String.format("0x%x+%d is not inside one region", gpa, len));
        }
        return s;
    }

    /** Writes bytes at a guest physical address (may span regions). */
    public void write(long gpa, byte[] data) {
        for (int i = 0; i < data.length; i++) {
            writeByte(gpa + i, data[i]);
        }
    }

    /** Reads bytes at a guest physical address (may span regions). */
    public byte[] read(long gpa, int len) {
        byte[] out = new byte[len];
        for (int i = 0; i < len; i++) {
            out[i] = readByte(gpa + i);
        }
        return out;
    }

    public void writeByte(long gpa, byte b) {
        long off = gpa - GPA_BASE;
        mappings[(int) (off / regionSize)].set(ValueLayout.JAVA_BYTE, off % regionSize, b);
    }

    public byte readByte(long gpa) {
        long off = gpa - GPA_BASE;
        return mappings[(int) (off / regionSize)].get(ValueLayout.JAVA_BYTE, off % regionSize);
    }

    /** Frees all regions; every ring and queue over them becomes unusable. */
    @Override
    public void close() {
        arena.close();
    }
}
