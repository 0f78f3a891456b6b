package io.vportd.vring;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * Device side of one virtio 1.x split virtqueue over ring memory that is already translated to
 * host segments (descriptor table, available ring, used ring).
 *
 * <p>Threading: one ring worker calls everything except construction, which may happen on any
 * thread before the worker is handed the queue (the hand-off must be a safe publication, e.g.
 * through a concurrent queue). {@link #setMemory(GuestMemory)} must be called from the worker or
 * while the worker is quiesced.
 *
 * <p>The guest is untrusted: every index, address and length it writes is checked. A bad chain
 * is consumed, returned to the guest with used length 0, counted in {@link QueueStats} and logged
 * (rate-limited); {@link #pop(Chain)} never throws for guest input and never touches memory
 * outside the ring segments and the guest memory regions.
 *
 * <p>Memory ordering (the driver runs concurrently on another CPU): the available index is read
 * with acquire semantics before any ring entry or descriptor it covers; the used index is stored
 * with release semantics after the used entries; a full fence separates publishing the used
 * index from reading the driver's interrupt suppression, and publishing notification state
 * (used flags or avail_event) from re-reading the available index.
 *
 * <p>Size: under 600 lines: one split ring's whole device side (available ring, chain walk
 * with every guard, used ring, notification suppression, handing popped chains back for a
 * device that moves several per system call) in one class keeps the hot path free of calls
 * across objects.
 */
public final class SplitQueue {

    /** Largest split queue size the spec allows. */
    public static final int MAX_SIZE = 32768;

    /** {@link #pop} result: a chain was popped into the Chain. */
    public static final int POPPED = 1;
    /** {@link #pop} result: nothing available (or the queue is broken). */
    public static final int EMPTY = 0;
    /** {@link #pop} result: a bad chain was consumed (used length 0 pushed) and counted. */
    public static final int BAD_CHAIN = -1;
    /**
     * {@link #pop} result: this call found the available index impossibly far ahead and marked the
     * queue broken; later calls return {@link #EMPTY}. (When {@link #hasAvailable()} or
     * {@link #enableNotifications()} is the call that notices, they return false instead.)
     */
    public static final int BROKEN = -2;

    static final int DESC_SIZE = 16;
    static final int F_NEXT = 1;
    static final int F_WRITE = 2;
    static final int F_INDIRECT = 4;
    /** Available ring flag: the driver does not want interrupts. */
    static final int AVAIL_F_NO_INTERRUPT = 1;
    /** Used ring flag: the device does not want kicks. */
    static final int USED_F_NO_NOTIFY = 1;
    /** Bound on indirect table entries (the largest queue size). */
    static final int MAX_INDIRECT = MAX_SIZE;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16_UNALIGNED =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32_UNALIGNED =
            ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64_UNALIGNED =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** (MemorySegment, long offset) -> short; used for the acquire/release/fenced accesses. */
    private static final VarHandle U16_VH = U16.varHandle();


    private final int index;
    private final int size;
    private final int mask;
    private final MemorySegment desc;
    private final MemorySegment avail;
    private final MemorySegment used;
    private final boolean eventIdx;
    private final Direction direction;
    private final boolean writable;
    private final QueueStats stats;
    private final long usedEventOffset;
    private final long availEventOffset;

    private GuestMemory memory = GuestMemory.empty();
    /** Next available ring slot the device will consume (free-running 16-bit). */
    private int nextAvail;
    /** Last available index read from the ring (free-running 16-bit). */
    private int availShadow;
    /** Used index the device will publish (free-running 16-bit). */
    private int usedIdx;
    /** Used index at the last publishUsed. */
    private int publishedUsed;
    private boolean notifyDisabled;
    private boolean broken;
    private ChainError lastError;
    private boolean canUnpop;
    private long lastPoppedBytes;

    /**
     * @param index     queue index (for log lines)
     * @param size      number of ring entries, a power of two in 1..32768
     * @param desc      descriptor table, at least 16*size bytes, 16-byte aligned, native
     * @param avail     available ring, at least 4+2*size (+2 with EVENT_IDX) bytes, 2-byte aligned, native
     * @param used      used ring, at least 4+8*size (+2 with EVENT_IDX) bytes, 4-byte aligned, native
     * @param eventIdx  whether VIRTIO_F_RING_EVENT_IDX was negotiated
     * @param direction which way every descriptor must point
     * @param stats     counters to update (may be shared across restarts of the same queue)
     * @throws IllegalArgumentException on a bad size, a too-small or misaligned segment
     */
    public SplitQueue(int index, int size, MemorySegment desc, MemorySegment avail, MemorySegment used,
                      boolean eventIdx, Direction direction, QueueStats stats) {
        Objects.requireNonNull(desc, "desc");
        Objects.requireNonNull(avail, "avail");
        Objects.requireNonNull(used, "used");
        Objects.requireNonNull(direction, "direction");
        Objects.requireNonNull(stats, "stats");
        String problem = ringProblem(size, desc, avail, used, eventIdx);
        if (problem != null) {
            throw new IllegalArgumentException("queue " + index + ": " + problem);
        }
        this.index = index;
        this.size = size;
        this.mask = size - 1;
        this.desc = desc;
        this.avail = avail;
        this.used = used;
        this.eventIdx = eventIdx;
        this.direction = direction;
        this.writable = direction == Direction.DEVICE_WRITES;
        this.stats = stats;
        this.usedEventOffset = 4L + 2L * size;
        this.availEventOffset = 4L + 8L * size;
        this.usedIdx = Short.toUnsignedInt((short) U16_VH.getAcquire(used, 2L));
        this.publishedUsed = usedIdx;
    }

    /** Bytes a descriptor table of {@code size} entries needs. */
    public static long descBytes(int size) {
        return (long) DESC_SIZE * size;
    }

    /** Bytes an available ring of {@code size} entries needs (with used_event when eventIdx). */
    public static long availBytes(int size, boolean eventIdx) {
        return 4L + 2L * size + (eventIdx ? 2 : 0);
    }

    /** Bytes a used ring of {@code size} entries needs (with avail_event when eventIdx). */
    public static long usedBytes(int size, boolean eventIdx) {
        return 4L + 8L * size + (eventIdx ? 2 : 0);
    }

    /**
     * What is wrong with these ring parameters, or null when a queue can be built over them:
     * size a power of two in 1..32768; each segment native, large enough and aligned
     * (descriptor table 16, available ring 2, used ring 4 bytes). For a vhost-user session to
     * refuse bad VHOST_USER_SET_VRING_ADDR values before handing the queue to a worker.
     */
    public static String ringProblem(int size, MemorySegment desc, MemorySegment avail, MemorySegment used,
                                     boolean eventIdx) {
        if (size < 1 || size > MAX_SIZE || (size & (size - 1)) != 0) {
            return "size must be a power of two in 1.." + MAX_SIZE + ", got " + size;
        }
        String p = segmentProblem("descriptor table", desc, descBytes(size), 16);
        if (p == null) {
            p = segmentProblem("available ring", avail, availBytes(size, eventIdx), 2);
        }
        if (p == null) {
            p = segmentProblem("used ring", used, usedBytes(size, eventIdx), 4);
        }
        return p;
    }

    private static String segmentProblem(String what, MemorySegment s, long need, int align) {
        if (s == null) {
            return what + " is missing";
        }
        if (!s.isNative()) {
            return what + " is not native memory";
        }
        if (s.byteSize() < need) {
            return what + " is " + s.byteSize() + " bytes, needs " + need;
        }
        if ((s.address() & (align - 1)) != 0) {
            return String.format("%s at 0x%x is not %d-byte aligned", what, s.address(), align);
        }
        return null;
    }

    public int index() {
        return index;
    }

    public int size() {
        return size;
    }

    public Direction direction() {
        return direction;
    }

    public boolean eventIdx() {
        return eventIdx;
    }

    public QueueStats stats() {
        return stats;
    }

    /** A Chain sized for this queue (the caller owns and closes it). */
    public Chain newChain() {
        return new Chain(size);
    }

    /** Replaces the translation table for descriptor addresses. Worker thread or quiesced worker only. */
    public void setMemory(GuestMemory memory) {
        this.memory = Objects.requireNonNull(memory, "memory");
    }

    public GuestMemory memory() {
        return memory;
    }

    /** Sets the next available index to consume (SET_VRING_BASE); only the low 16 bits count. */
    public void setNextAvail(int value) {
        canUnpop = false;
        nextAvail = value & 0xFFFF;
        availShadow = nextAvail;
    }

    /** The next available index the device will consume (GET_VRING_BASE). */
    public int nextAvail() {
        return nextAvail;
    }

    /** The used index the device will publish next (free-running, 16 bits). */
    public int usedIndex() {
        return usedIdx;
    }

    /** True once the driver moved the available index impossibly far; the queue then does nothing. */
    public boolean isBroken() {
        return broken;
    }

    /** Why the last bad chain was refused, or null. */
    public ChainError lastError() {
        return lastError;
    }

    /** True when the driver has made buffers available that the device has not popped yet. */
    public boolean hasAvailable() {
        if (broken) {
            return false;
        }
        return availShadow != nextAvail || refreshAvail();
    }

    /**
     * Reloads the available index (acquire) and checks it: more than {@code size} entries
     * beyond the device's position is impossible for a correct driver, and the queue is marked
     * broken. Every read of the guest's available index goes through here.
     *
     * @return true when entries are available
     */
    private boolean refreshAvail() {
        int a = Short.toUnsignedInt((short) U16_VH.getAcquire(avail, 2L));
        availShadow = a;
        int pending = (a - nextAvail) & 0xFFFF;
        if (pending > size) {
            markBroken();
            return false;
        }
        return pending != 0;
    }

    /**
     * Pops the next available chain into {@code c}.
     *
     * @return {@link #POPPED}, {@link #EMPTY}, {@link #BAD_CHAIN} (consumed with used length 0,
     *         counted, caller should go on popping and later publish), or {@link #BROKEN} (once)
     */
    public int pop(Chain c) {
        canUnpop = false;
        if (broken) {
            return EMPTY;
        }
        int next = nextAvail;
        if (availShadow == next && !refreshAvail()) {
            return broken ? BROKEN : EMPTY;
        }
        int head = Short.toUnsignedInt(avail.get(U16_UNALIGNED, 4L + 2L * (next & mask)));
        nextAvail = (next + 1) & 0xFFFF;
        if (head >= size) {
            c.reset(head, writable);
            rejected(ChainError.HEAD_OUT_OF_RANGE, head, -1);
            return BAD_CHAIN;
        }
        ChainError err = walk(c, head);
        if (err != null) {
            c.clearSegments();
            rejected(err, head, c.capacity());
            pushUsed(head, 0);
            return BAD_CHAIN;
        }
        stats.chainPopped(c.totalLength());
        lastPoppedBytes = c.totalLength();
        canUnpop = true;
        return POPPED;
    }

    /**
     * Pops the next available chain into {@code c} only if it is a good one: a bad chain (or a
     * broken ring) is left where it is, uncounted, for a later {@link #pop} to deal with in its
     * turn. For a device that gathers several chains into one transfer: what it pops here it can
     * hand back with {@link #giveBack}, so no used entry is ever pushed out of turn.
     *
     * @return {@link #POPPED}, or {@link #EMPTY} when nothing good is available next
     */
    public int popGood(Chain c) {
        canUnpop = false;
        if (broken) {
            return EMPTY;
        }
        int next = nextAvail;
        if (availShadow == next && !refreshAvail()) {
            return EMPTY;
        }
        int head = Short.toUnsignedInt(avail.get(U16_UNALIGNED, 4L + 2L * (next & mask)));
        if (head >= size || walk(c, head) != null) {
            c.clearSegments();
            return EMPTY;
        }
        nextAvail = (next + 1) & 0xFFFF;
        stats.chainPopped(c.totalLength());
        return POPPED;
    }

    /**
     * Hands back the last {@code chains} chains popped (the most recent pops, whose used entries
     * were not pushed and which hold {@code bytes} in all), untouched, so later pops return them
     * again in the same order. Used entries pushed in the meantime for chains popped before them
     * are fine. For a device that gathered more chains than the host took.
     *
     * @throws IllegalArgumentException when chains is negative or more than the ring holds (a caller bug)
     */
    public void giveBack(int chains, long bytes) {
        if (chains < 0 || chains > size) {
            throw new IllegalArgumentException("queue " + index + ": giveBack(" + chains + ")");
        }
        if (chains == 0) {
            return;
        }
        canUnpop = false;
        nextAvail = (nextAvail - chains) & 0xFFFF;
        stats.chainsUnpopped(chains, bytes);
    }

    /**
     * Gives back the chain just popped, untouched, so the next {@link #pop} returns it again
     * (for a device that popped a receive buffer and then found it had nothing to put in it, or
     * must stop the queue while holding one). Only directly after a pop that returned
     * {@link #POPPED}, before its used entry is pushed.
     *
     * @throws IllegalStateException otherwise (a caller bug)
     */
    public void unpop() {
        if (!canUnpop) {
            throw new IllegalStateException("queue " + index + ": unpop without a preceding successful pop");
        }
        canUnpop = false;
        nextAvail = (nextAvail - 1) & 0xFFFF;
        stats.chainUnpopped(lastPoppedBytes);
    }

    /** Walks the chain starting at {@code head}; returns null when good. */
    private ChainError walk(Chain c, int head) {
        c.reset(head, writable);
        GuestMemory mem = memory;
        MemorySegment table = desc;
        long tableBase = 0;
        long tableCount = size;
        boolean indirect = false;
        int i = head;
        int hops = 0;
        int slots = 0;
        long total = 0;
        while (true) {
            if (hops++ >= tableCount) {
                return ChainError.CHAIN_TOO_LONG;
            }
            if (!indirect) {
                c.ringSlots(++slots);
            }
            long at = tableBase + (long) i * DESC_SIZE;
            long addr = table.get(U64_UNALIGNED, at);
            long len = Integer.toUnsignedLong(table.get(U32_UNALIGNED, at + 8));
            int flags = Short.toUnsignedInt(table.get(U16_UNALIGNED, at + 12));
            int nextIdx = Short.toUnsignedInt(table.get(U16_UNALIGNED, at + 14));
            if ((flags & F_INDIRECT) != 0) {
                if (indirect) {
                    return ChainError.NESTED_INDIRECT;
                }
                if ((flags & F_NEXT) != 0) {
                    return ChainError.INDIRECT_WITH_NEXT;
                }
                if (len == 0 || (len & (DESC_SIZE - 1)) != 0 || len / DESC_SIZE > MAX_INDIRECT) {
                    return ChainError.INDIRECT_BAD_LENGTH;
                }
                int r = mem.findGuest(addr, len);
                if (r < 0) {
                    return ChainError.INDIRECT_NOT_MAPPED;
                }
                GuestRegion region = mem.region(r);
                table = region.mapping();
                tableBase = addr - region.guestPhysAddr();
                tableCount = len / DESC_SIZE;
                indirect = true;
                i = 0;
                hops = 0;
                continue;
            }
            if (((flags & F_WRITE) != 0) != writable) {
                return ChainError.WRONG_DIRECTION;
            }
            total += len;
            if (total > Integer.MAX_VALUE) {
                return ChainError.TOTAL_LENGTH_OVERFLOW;
            }
            if (len != 0) {
                ChainError e = translate(c, mem, addr, len);
                if (e != null) {
                    return e;
                }
            }
            if ((flags & F_NEXT) == 0) {
                return null;
            }
            if (nextIdx >= tableCount) {
                return ChainError.NEXT_OUT_OF_RANGE;
            }
            i = nextIdx;
        }
    }

    /** Adds guest [gpa, gpa+len) to the chain, one segment per region it touches. len > 0, < 2^31. */
    private static ChainError translate(Chain c, GuestMemory mem, long gpa, long len) {
        if (Long.compareUnsigned(gpa + len - 1, gpa) < 0) {
            return ChainError.ADDRESS_NOT_MAPPED; // wraps around the address space
        }
        long rem = len;
        while (rem > 0) {
            int r = mem.findGuest(gpa, 1);
            if (r < 0) {
                return ChainError.ADDRESS_NOT_MAPPED;
            }
            if (c.isFull()) {
                return ChainError.TOO_MANY_SEGMENTS;
            }
            GuestRegion region = mem.region(r);
            long off = gpa - region.guestPhysAddr();
            long n = Math.min(rem, region.size() - off);
            c.add(region.mapping(), off, (int) n);
            gpa += n;
            rem -= n;
        }
        return null;
    }

    private void rejected(ChainError err, int head, int capacity) {
        lastError = err;
        stats.badChain(err);
        stats.log.warn("queue {0}: bad descriptor chain at head {1} ({2}); returned with length 0{3}", Integer.toString(index),
                Integer.toString(head), err.text(), err == ChainError.TOO_MANY_SEGMENTS ? " (capacity " + capacity + ")" : "");
    }

    private void markBroken() {
        broken = true;
        lastError = ChainError.AVAIL_INDEX_JUMP;
        stats.badChain(ChainError.AVAIL_INDEX_JUMP);
        stats.log.warn("queue {0}: available index {1} is more than {2} ahead of {3}; queue marked broken until reset",
                Integer.toString(index), Integer.toString(availShadow), Integer.toString(size), Integer.toString(nextAvail));
    }

    /**
     * Writes a used entry for chain {@code head} with {@code len} bytes written by the device
     * (0 for device-readable chains). Not visible to the driver until {@link #publishUsed()}.
     *
     * @throws IllegalArgumentException if head is not a ring index or len is negative (caller bugs)
     */
    public void pushUsed(int head, int len) {
        if (head < 0 || head >= size || len < 0) {
            throw new IllegalArgumentException("queue " + index + ": pushUsed(" + head + ", " + len + ")");
        }
        canUnpop = false;
        long at = 4L + 8L * (usedIdx & mask);
        used.set(U32_UNALIGNED, at, head);
        used.set(U32_UNALIGNED, at + 4, len);
        usedIdx = (usedIdx + 1) & 0xFFFF;
        stats.used(len);
    }

    /**
     * Makes the used entries pushed so far visible to the driver (release store of the used index)
     * and says whether the driver wants an interrupt for them.
     *
     * @return true when the caller must signal the call eventfd
     */
    public boolean publishUsed() {
        int now = usedIdx;
        int old = publishedUsed;
        if (now == old) {
            return false;
        }
        U16_VH.setRelease(used, 2L, (short) now);
        publishedUsed = now;
        // The driver publishes its suppression state and then re-reads the used index; we publish
        // the used index and then read its suppression state. A full fence on both sides means at
        // least one of us sees the other's store.
        VarHandle.fullFence();
        boolean need;
        if (eventIdx) {
            int event = Short.toUnsignedInt(avail.get(U16_UNALIGNED, usedEventOffset));
            // Interrupt when used_event lies in [old, now): the driver asked to hear about that entry.
            need = ((now - event - 1) & 0xFFFF) < ((now - old) & 0xFFFF);
        } else {
            need = (Short.toUnsignedInt(avail.get(U16_UNALIGNED, 0L)) & AVAIL_F_NO_INTERRUPT) == 0;
        }
        if (need) {
            stats.interrupt();
        } else {
            stats.interruptSuppressed();
        }
        return need;
    }

    /**
     * Asks the driver not to kick while the device is draining. Without EVENT_IDX this sets
     * VIRTQ_USED_F_NO_NOTIFY; with EVENT_IDX it leaves avail_event where it is, so the driver
     * kicks at most once more until {@link #enableNotifications()}.
     */
    public void disableNotifications() {
        if (notifyDisabled) {
            return;
        }
        notifyDisabled = true;
        if (!eventIdx) {
            U16_VH.setRelease(used, 0L, (short) USED_F_NO_NOTIFY);
        }
    }

    /**
     * Asks the driver to kick for the next buffer, then re-checks the available index. Use as
     * "disable, drain, enable; if enable returned true, drain again": a buffer the driver added
     * between the last pop and this call is seen here, so no wake-up is lost.
     *
     * @return true when buffers are available (the caller must drain again)
     */
    public boolean enableNotifications() {
        if (broken) {
            return false;
        }
        notifyDisabled = false;
        if (eventIdx) {
            U16_VH.setRelease(used, availEventOffset, (short) nextAvail);
        } else {
            U16_VH.setRelease(used, 0L, (short) 0);
        }
        // Our store above and the driver's avail index store must not pass each other's loads.
        VarHandle.fullFence();
        boolean more = refreshAvail();
        if (more) {
            stats.notifyRecheck();
        }
        return more;
    }

    @Override
    public String toString() {
        return "SplitQueue[" + index + ", size=" + size + ", " + direction + (eventIdx ? ", event-idx" : "")
                + ", nextAvail=" + nextAvail + ", used=" + usedIdx + (broken ? ", BROKEN" : "") + "]";
    }
}
