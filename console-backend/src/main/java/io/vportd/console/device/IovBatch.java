package io.vportd.console.device;

import io.vportd.vring.Chain;
import io.vportd.vring.SplitQueue;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Several chains of one queue behind one native iovec array, for one {@code writev} (transmit:
 * gather) or one {@code readv} (receive: scatter) over all of them. Member 0 is the port's own
 * chain (possibly resumed part-way); the others were popped with {@link SplitQueue#popGood} into
 * a scratch chain, their iovecs copied here and their head, length, ring slots and avail position
 * noted, so what the host did not take can be handed back with {@link SplitQueue#giveBack}.
 *
 * <p>Storage is allocated once (IOV_MAX iovecs, {@link #MAX_CHAINS} members, one scratch chain
 * per queue size): nothing per chain. Scratch, reused for every port: confined to the
 * data-plane thread, and empty between calls of {@link PortPump}.
 */
final class IovBatch implements AutoCloseable {

    /** Most chains in one batch. */
    static final int MAX_CHAINS = 64;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment iov = arena.allocate((long) PortPump.IOV_MAX * io.vportd.sys.Io.IOVEC_BYTES, 16);
    private final long iovBase = iov.address();
    /** Scratch chains by log2 of the queue size: a popped member must see the capacity its queue gives. */
    private final Chain[] scratch = new Chain[16];

    final int[] heads = new int[MAX_CHAINS];
    final int[] slots = new int[MAX_CHAINS];
    final int[] availAt = new int[MAX_CHAINS];
    final long[] lengths = new long[MAX_CHAINS];
    int chains;
    int iovecs;
    long bytes;

    /** Starts a batch with {@code first} (its iovecs left from its cursor); false when they alone exceed IOV_MAX. */
    boolean start(Chain first) {
        chains = 0;
        iovecs = 0;
        bytes = 0;
        return add(first, -1);
    }

    /** Appends {@code c}, popped at avail position {@code at}; false (nothing added) when its iovecs do not fit. */
    boolean add(Chain c, int at) {
        int n = c.iovCount();
        if (iovecs + n > PortPump.IOV_MAX || chains == MAX_CHAINS) {
            return false;
        }
        c.copyIovecsTo(iov, iovecs);
        heads[chains] = c.head();
        slots[chains] = c.ringSlots();
        availAt[chains] = at;
        lengths[chains] = c.remaining();
        chains++;
        iovecs += n;
        bytes += c.remaining();
        return true;
    }

    /** Bytes of members {@code from..chains-1}. */
    long bytesFrom(int from) {
        long b = 0;
        for (int i = from; i < chains; i++) {
            b += lengths[i];
        }
        return b;
    }

    long iovAddress() {
        return iovBase;
    }

    /** A chain to pop members of {@code q} into (created once per queue size). */
    Chain scratchFor(SplitQueue q) {
        int k = Integer.numberOfTrailingZeros(q.size()) & 15;
        Chain c = scratch[k];
        if (c == null || c.capacity() != q.size()) {
            if (c != null) {
                c.close();
            }
            c = new Chain(q.size());
            scratch[k] = c;
        }
        return c;
    }

    @Override
    public void close() {
        for (Chain c : scratch) {
            if (c != null) {
                c.close();
            }
        }
        arena.close();
    }
}
