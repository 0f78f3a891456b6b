package io.vportd.vring.testing;

import io.vportd.vring.Direction;
import io.vportd.vring.GuestMemory;
import io.vportd.vring.QueueStats;
import io.vportd.vring.SplitQueue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The driver (guest) side of one split virtqueue, laid out in memory the way the Linux virtio
 * driver lays it out, for tests and benchmarks of the device side.
 *
 * <p>Guest memory is a {@link GuestRam}: the driver's own (the simple constructors) or one
 * shared by several drivers, as the queues of one device share one memory table. Guest
 * physical addresses, frontend virtual addresses and host addresses all differ, so a
 * translation mix-up shows. The ring is allocated 4 KiB-aligned inside one region: descriptor
 * table, available ring (flags, idx, ring[], used_event), and the used ring (flags, idx, ring[],
 * avail_event) on the next 4 KiB boundary. Buffers come from the RAM's bump allocator.
 *
 * <p>Two kinds of method: convenient ones that allocate ({@link #addOutBuffer}, {@link #pollUsed},
 * ...) for tests, and allocation-free ones ({@link #add(long[], int[], int, int)},
 * {@link #reclaimUsed()}, {@link #kickNeeded()}) for benchmarks. Raw poking methods
 * ({@link #pokeDescriptor}, {@link #publishHead}, {@link #setAvailIdx}) build hostile rings.
 *
 * <p>Not thread-safe: one driver thread; the device may run on another thread, and the ring
 * accesses use the same orderings as the Linux driver (release store of the available index,
 * acquire load of the used index, full fence before reading the device's suppression state).
 */
public final class RingDriver implements AutoCloseable {

    /** Guest physical address of the first byte of guest memory (see {@link GuestRam}). */
    public static final long GPA_BASE = GuestRam.GPA_BASE;
    /** Frontend (QEMU) virtual address of the first byte of guest memory. */
    public static final long USER_BASE = GuestRam.USER_BASE;

    public static final int F_NEXT = 1;
    public static final int F_WRITE = 2;
    public static final int F_INDIRECT = 4;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16U = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32U = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64U = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U16_VH = U16.varHandle();

    /** A buffer in guest memory. */
    public record Buffer(long gpa, int length) {
    }

    /** A used entry as the driver reads it, with the bytes the device wrote into the chain's in-buffers. */
    public record Used(int id, int length, byte[] data) {
    }

    private final int size;
    private final int mask;
    private final boolean eventIdx;
    private final GuestRam ram;
    private final boolean ownsRam;
    private final MemorySegment desc;
    private final MemorySegment avail;
    private final MemorySegment used;
    private final long descGpa;
    private final long availGpa;
    private final long usedGpa;

    private final int[] freeStack;
    private int freeTop;
    private final int[] descNext;
    private final int[] chainDescs;
    private final long[] indirectGpa;
    private final int[] indirectCount;

    private int availIdx;
    /** Where a new device queue starts consuming (set by startAt). */
    private int baseIdx;
    private int availAtLastKick;
    private int lastUsedSeen;
    private int lastUsedLength;

    /** A ring of {@code size} entries in its own 4 MiB (or more for big rings) of guest memory, one region. */
    public RingDriver(int size, boolean eventIdx) {
        this(size, eventIdx, defaultMemory(size), 1);
    }

    /**
     * A ring in its own guest memory; the ring is the first thing in region 0.
     *
     * @param size        ring size (any value the caller likes; the device checks it)
     * @param eventIdx    whether VIRTIO_F_RING_EVENT_IDX is negotiated
     * @param memoryBytes guest memory in total, split evenly into {@code regions} regions
     * @param regions     number of regions (contiguous in guest physical space, separate on the host)
     */
    public RingDriver(int size, boolean eventIdx, long memoryBytes, int regions) {
        this(new GuestRam(memoryBytes, regions), size, eventIdx, true);
    }

    /**
     * A ring allocated inside shared guest RAM (several queues of one device). The caller closes
     * the RAM; closing this driver does not.
     */
    public RingDriver(GuestRam ram, int size, boolean eventIdx) {
        this(ram, size, eventIdx, false);
    }

    private RingDriver(GuestRam ram, int size, boolean eventIdx, boolean ownsRam) {
        if (size < 1 || size > 65536) {
            throw new IllegalArgumentException("size " + size);
        }
        this.ram = ram;
        this.ownsRam = ownsRam;
        this.size = size;
        this.mask = Integer.highestOneBit(size) == size ? size - 1 : -1;
        this.eventIdx = eventIdx;
        long availOffset = 16L * size;
        long usedOffset = GuestRam.align(availOffset + 6 + 2L * size, 4096);
        Buffer ring = ram.allocateWithinRegion(usedOffset + 6 + 8L * size, 4096);
        this.descGpa = ring.gpa();
        this.availGpa = ring.gpa() + availOffset;
        this.usedGpa = ring.gpa() + usedOffset;
        this.desc = ram.slice(descGpa, 16L * size);
        this.avail = ram.slice(availGpa, 6 + 2L * size);
        this.used = ram.slice(usedGpa, 6 + 8L * size);
        this.freeStack = new int[size];
        for (int i = 0; i < size; i++) {
            freeStack[i] = size - 1 - i;
        }
        this.freeTop = size;
        this.descNext = new int[size];
        this.chainDescs = new int[size];
        this.indirectGpa = new long[size];
        this.indirectCount = new int[size];
    }

    private static long defaultMemory(int size) {
        long ring = 32L * size + 8192;
        return Math.max(4L << 20, 2 * ring + (2L << 20));
    }

    // ---------------------------------------------------------------- memory

    public int size() {
        return size;
    }

    public boolean eventIdx() {
        return eventIdx;
    }

    public GuestRam ram() {
        return ram;
    }

    public GuestMemory memory() {
        return ram.memory();
    }

    /** First guest physical address past guest memory. */
    public long memoryEnd() {
        return ram.memoryEnd();
    }

    public long regionSize() {
        return ram.regionSize();
    }

    /** Guest physical address of the descriptor table / available ring / used ring. */
    public long descGpa() {
        return descGpa;
    }

    public long availGpa() {
        return availGpa;
    }

    public long usedGpa() {
        return usedGpa;
    }

    /** The frontend virtual addresses vhost-user would send for the rings (VHOST_USER_SET_VRING_ADDR). */
    public long descUserAddr() {
        return ram.userAddr(descGpa);
    }

    public long availUserAddr() {
        return ram.userAddr(availGpa);
    }

    public long usedUserAddr() {
        return ram.userAddr(usedGpa);
    }

    /** Allocates {@code len} bytes of guest memory, 8-byte aligned (see {@link GuestRam#allocate}). */
    public Buffer allocate(int len) {
        return ram.allocate(len);
    }

    public Buffer allocate(int len, int alignment) {
        return ram.allocate(len, alignment);
    }

    public Buffer allocateWithinRegion(int len, int alignment) {
        return ram.allocateWithinRegion(len, alignment);
    }

    public long bytesFree() {
        return ram.bytesFree();
    }

    /** See {@link GuestRam#bufferAtRegionEnd}. */
    public Buffer bufferAtRegionEnd(int k, int len, int over) {
        return ram.bufferAtRegionEnd(k, len, over);
    }

    public void write(long gpa, byte[] data) {
        ram.write(gpa, data);
    }

    public byte[] read(long gpa, int len) {
        return ram.read(gpa, len);
    }

    private MemorySegment segmentAt(long gpa, long len) {
        return ram.slice(gpa, len);
    }

    /**
     * Starts the ring at the given free-running indices (to exercise 16-bit wrap-around): sets
     * the available and used index in ring memory and the driver's shadows. Call before adding
     * buffers and before {@link #newDeviceQueue}, which starts the device at {@code availIdx}.
     */
    public void startAt(int availIdx, int usedIdx) {
        this.availIdx = availIdx & 0xFFFF;
        this.baseIdx = this.availIdx;
        this.availAtLastKick = this.availIdx;
        this.lastUsedSeen = usedIdx & 0xFFFF;
        U16_VH.setRelease(avail, 2L, (short) this.availIdx);
        U16_VH.setRelease(used, 2L, (short) this.lastUsedSeen);
    }

    // ---------------------------------------------------------------- device side

    /** A device queue over this ring, translated the way vhost-user does (from user addresses). */
    public SplitQueue newDeviceQueue(Direction direction) {
        return newDeviceQueue(direction, new QueueStats());
    }

    public SplitQueue newDeviceQueue(Direction direction, QueueStats stats) {
        return newDeviceQueue(0, direction, stats);
    }

    /** A device queue with the given index (for log lines) over this ring. */
    public SplitQueue newDeviceQueue(int index, Direction direction, QueueStats stats) {
        GuestMemory memory = ram.memory();
        MemorySegment d = memory.sliceUser(descUserAddr(), SplitQueue.descBytes(size));
        MemorySegment a = memory.sliceUser(availUserAddr(), SplitQueue.availBytes(size, eventIdx));
        MemorySegment u = memory.sliceUser(usedUserAddr(), SplitQueue.usedBytes(size, eventIdx));
        SplitQueue q = new SplitQueue(index, size, d, a, u, eventIdx, direction, stats);
        q.setMemory(memory);
        q.setNextAvail(baseIdx);
        return q;
    }

    /** The raw ring segments (for tests that build their own queue). */
    public MemorySegment descSegment() {
        return desc;
    }

    public MemorySegment availSegment() {
        return avail;
    }

    public MemorySegment usedSegment() {
        return used;
    }

    // ---------------------------------------------------------------- adding buffers

    public int freeDescriptors() {
        return freeTop;
    }

    /** Copies {@code data} into a new guest buffer and offers it as a one-descriptor readable chain. */
    public int addOutBuffer(byte[] data) {
        Buffer b = allocate(data.length);
        write(b.gpa(), data);
        return addChain(new Buffer[] {b}, new Buffer[0]);
    }

    /** Offers a new {@code len}-byte buffer as a one-descriptor writable chain. */
    public int addInBuffer(int len) {
        return addChain(new Buffer[0], new Buffer[] {allocate(len)});
    }

    /** Copies each piece into its own buffer and offers them as one readable chain. */
    public int addOutChain(byte[]... pieces) {
        Buffer[] out = new Buffer[pieces.length];
        for (int i = 0; i < pieces.length; i++) {
            out[i] = allocate(pieces[i].length);
            write(out[i].gpa(), pieces[i]);
        }
        return addChain(out, new Buffer[0]);
    }

    /** Offers a chain of readable then writable buffers through the descriptor table. Returns the head. */
    public int addChain(Buffer[] out, Buffer[] in) {
        int n = out.length + in.length;
        long[] gpas = new long[n];
        int[] lens = new int[n];
        for (int i = 0; i < out.length; i++) {
            gpas[i] = out[i].gpa();
            lens[i] = out[i].length();
        }
        for (int i = 0; i < in.length; i++) {
            gpas[out.length + i] = in[i].gpa();
            lens[out.length + i] = in[i].length();
        }
        int head = add(gpas, lens, out.length, in.length);
        if (head < 0) {
            throw new IllegalStateException("ring full: " + n + " descriptors wanted, " + freeTop + " free");
        }
        return head;
    }

    /**
     * Allocation-free: offers {@code outCount} readable then {@code inCount} writable buffers
     * ({@code gpas[i]}, {@code lens[i]}) as one chain and publishes it.
     *
     * @return the head, or -1 when not enough descriptors are free
     */
    public int add(long[] gpas, int[] lens, int outCount, int inCount) {
        int n = outCount + inCount;
        if (n < 1 || n > freeTop) {
            return -1;
        }
        int head = freeStack[freeTop - 1];
        int prev = -1;
        for (int i = 0; i < n; i++) {
            int d = freeStack[--freeTop];
            if (prev >= 0) {
                descNext[prev] = d;
                desc.set(U16U, 16L * prev + 14, (short) d);
            }
            int flags = (i >= outCount ? F_WRITE : 0) | (i < n - 1 ? F_NEXT : 0);
            writeDesc(desc, 0, d, gpas[i], lens[i], flags, 0);
            prev = d;
        }
        chainDescs[head] = n;
        indirectGpa[head] = 0;
        publishHead(head);
        return head;
    }

    /** Offers readable then writable buffers through one indirect table in guest memory. */
    public int addIndirectChain(Buffer[] out, Buffer[] in) {
        int n = out.length + in.length;
        Buffer table = allocateWithinRegion(16 * n, 16);
        for (int i = 0; i < n; i++) {
            Buffer b = i < out.length ? out[i] : in[i - out.length];
            int flags = (i >= out.length ? F_WRITE : 0) | (i < n - 1 ? F_NEXT : 0);
            pokeIndirectDescriptor(table.gpa(), i, b.gpa(), b.length(), flags, i + 1);
        }
        if (freeTop < 1) {
            throw new IllegalStateException("ring full");
        }
        int head = freeStack[--freeTop];
        writeDesc(desc, 0, head, table.gpa(), 16 * n, F_INDIRECT, 0);
        chainDescs[head] = 1;
        indirectGpa[head] = table.gpa();
        indirectCount[head] = n;
        publishHead(head);
        return head;
    }

    // ---------------------------------------------------------------- raw poking

    /** Takes a descriptor index off the free list for raw poking (it is not returned by reclaim). */
    public int takeDescriptor() {
        if (freeTop < 1) {
            throw new IllegalStateException("ring full");
        }
        int d = freeStack[--freeTop];
        chainDescs[d] = 0;
        return d;
    }

    /** Writes descriptor {@code i} of the ring's table verbatim. */
    public void pokeDescriptor(int i, long addr, int len, int flags, int next) {
        writeDesc(desc, 0, i, addr, len, flags, next);
    }

    /** Writes descriptor {@code i} of an indirect table at guest address {@code tableGpa}. */
    public void pokeIndirectDescriptor(long tableGpa, int i, long addr, int len, int flags, int next) {
        MemorySegment s = segmentAt(tableGpa + 16L * i, 16);
        writeDesc(s, 0, 0, addr, len, flags, next);
    }

    private static void writeDesc(MemorySegment table, long base, int i, long addr, int len, int flags, int next) {
        long at = base + 16L * i;
        table.set(U64U, at, addr);
        table.set(U32U, at + 8, len);
        table.set(U16U, at + 12, (short) flags);
        table.set(U16U, at + 14, (short) next);
    }

    /** Puts {@code head} (any value) in the next available ring slot and publishes the new index. */
    public void publishHead(int head) {
        int slot = mask >= 0 ? availIdx & mask : Integer.remainderUnsigned(availIdx, size);
        avail.set(U16U, 4L + 2L * slot, (short) head);
        availIdx = (availIdx + 1) & 0xFFFF;
        U16_VH.setRelease(avail, 2L, (short) availIdx);
    }

    /** Stores an arbitrary available index (for hostile tests); the driver's own shadow follows it. */
    public void setAvailIdx(int idx) {
        availIdx = idx & 0xFFFF;
        U16_VH.setRelease(avail, 2L, (short) availIdx);
    }

    public int availIdx() {
        return availIdx;
    }


    // ---------------------------------------------------------------- notifications

    /**
     * Whether the driver must kick the device for the buffers added since the last call, as
     * Linux's virtqueue_kick_prepare decides: with EVENT_IDX when avail_event lies in the
     * range just published, otherwise unless the device set VIRTQ_USED_F_NO_NOTIFY.
     */
    public boolean kickNeeded() {
        VarHandle.fullFence();
        int now = availIdx;
        int old = availAtLastKick;
        availAtLastKick = now;
        if (eventIdx) {
            int event = Short.toUnsignedInt(used.get(U16U, 4L + 8L * size));
            return ((now - event - 1) & 0xFFFF) < ((now - old) & 0xFFFF);
        }
        return (Short.toUnsignedInt(used.get(U16U, 0L)) & 1) == 0;
    }

    /** Driver asks for no interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT; with EVENT_IDX used_event is left alone). */
    public void disableInterrupts() {
        if (!eventIdx) {
            U16_VH.setRelease(avail, 0L, (short) 1);
        } else {
            // Linux parks used_event far behind so the device's crossing test fails.
            U16_VH.setRelease(avail, 4L + 2L * size, (short) (lastUsedSeen - 0x8000));
        }
    }

    /**
     * Driver asks for an interrupt at the next used entry, then re-checks (full fence) whether
     * used entries are already pending; true means "poll again, the interrupt may not come".
     */
    public boolean enableInterrupts() {
        if (eventIdx) {
            U16_VH.setRelease(avail, 4L + 2L * size, (short) lastUsedSeen);
        } else {
            U16_VH.setRelease(avail, 0L, (short) 0);
        }
        VarHandle.fullFence();
        return usedIdx() != lastUsedSeen;
    }

    /** With EVENT_IDX: ask for an interrupt only once the used index passes {@code idx}. */
    public void setUsedEvent(int idx) {
        U16_VH.setRelease(avail, 4L + 2L * size, (short) idx);
    }

    /** Raw available ring flags. */
    public void setAvailFlags(int flags) {
        U16_VH.setRelease(avail, 0L, (short) flags);
    }

    /** The device's used ring flags (VIRTQ_USED_F_NO_NOTIFY = 1). */
    public int usedFlags() {
        return Short.toUnsignedInt((short) U16_VH.getAcquire(used, 0L));
    }

    /** The device's avail_event (EVENT_IDX). */
    public int availEvent() {
        return Short.toUnsignedInt((short) U16_VH.getAcquire(used, 4L + 8L * size));
    }

    // ---------------------------------------------------------------- used ring

    /** The used index the device published (acquire). */
    public int usedIdx() {
        return Short.toUnsignedInt((short) U16_VH.getAcquire(used, 2L));
    }

    /** Used entries published and not yet reclaimed. */
    public int pendingUsed() {
        return (usedIdx() - lastUsedSeen) & 0xFFFF;
    }

    /**
     * Allocation-free: takes the next used entry, frees its descriptors and returns its id, or -1
     * when there is none. {@link #lastUsedLength()} gives its length.
     */
    public int reclaimUsed() {
        if (usedIdx() == lastUsedSeen) {
            return -1;
        }
        long at = 4L + 8L * (lastUsedSeen & (Integer.highestOneBit(size) - 1));
        int id = used.get(U32U, at);
        lastUsedLength = used.get(U32U, at + 4);
        lastUsedSeen = (lastUsedSeen + 1) & 0xFFFF;
        if (id >= 0 && id < size) {
            int n = chainDescs[id];
            chainDescs[id] = 0;
            int d = id;
            for (int k = 0; k < n; k++) {
                freeStack[freeTop++] = d;
                d = descNext[d];
            }
        }
        return id;
    }

    public int lastUsedLength() {
        return lastUsedLength;
    }

    /** Takes the next used entry with the bytes the device wrote into its writable buffers, or null. */
    public Used pollUsed() {
        if (usedIdx() == lastUsedSeen) {
            return null;
        }
        long at = 4L + 8L * (lastUsedSeen & (Integer.highestOneBit(size) - 1));
        int id = used.get(U32U, at);
        int len = used.get(U32U, at + 4);
        byte[] data = id >= 0 && id < size && chainDescs[id] > 0 ? writtenBytes(id, len) : new byte[0];
        reclaimUsed();
        return new Used(id, len, data);
    }

    /** All used entries published so far. */
    public List<Used> drainUsed() {
        List<Used> out = new ArrayList<>();
        Used u;
        while ((u = pollUsed()) != null) {
            out.add(u);
        }
        return out;
    }

    /** Reads the first {@code len} bytes of the writable buffers of chain {@code head} (driver-added chains). */
    public byte[] writtenBytes(int head, int len) {
        byte[] out = new byte[Math.max(0, len)];
        int done = 0;
        if (indirectGpa[head] != 0) {
            long t = indirectGpa[head];
            for (int i = 0; i < indirectCount[head] && done < len; i++) {
                MemorySegment s = segmentAt(t + 16L * i, 16);
                done = copyIfWritable(s, 0, out, done);
            }
        } else {
            int d = head;
            for (int k = 0; k < chainDescs[head] && done < len; k++) {
                done = copyIfWritable(desc, 16L * d, out, done);
                d = descNext[d];
            }
        }
        return out;
    }

    private int copyIfWritable(MemorySegment table, long at, byte[] out, int done) {
        long addr = table.get(U64U, at);
        int blen = table.get(U32U, at + 8);
        int flags = table.get(U16U, at + 12);
        if ((flags & F_WRITE) == 0) {
            return done;
        }
        int n = Math.min(blen, out.length - done);
        byte[] part = read(addr, n);
        System.arraycopy(part, 0, out, done, n);
        return done + n;
    }

    /** Frees the guest memory if this driver created it. */
    @Override
    public void close() {
        if (ownsRam) {
            ram.close();
        }
    }
}
