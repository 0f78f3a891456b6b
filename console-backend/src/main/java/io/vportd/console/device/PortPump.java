package io.vportd.console.device;

import io.vportd.console.control.ControlMachine;
import io.vportd.console.endpoint.Endpoint;
import io.vportd.sys.Errno;
import io.vportd.sys.Io;
import io.vportd.telemetry.LogLimiter;
import io.vportd.vring.Chain;
import io.vportd.vring.SplitQueue;
import java.lang.System.Logger.Level;
import java.util.function.Consumer;

/**
 * The hot path: bytes between a port's virtqueues and its host endpoint, once, with
 * readv/writev straight on guest memory. Generic ports get back-pressure by holding
 * descriptors: a transmit chain the host cannot take yet stays popped but unused, and nothing
 * more is popped from that queue until it is taken. Console transmit chains are completed at
 * once, always (what the host cannot take waits in a bounded backlog). Nothing here allocates
 * per descriptor. Confined to the data-plane thread.
 */
final class PortPump {

    private static final System.Logger LOG = System.getLogger("vportd.device");
    /** Lines a host peer can cause (failed reads and writes). */
    private final LogLimiter hostLog = new LogLimiter(LOG);

    /** Linux refuses readv/writev with more vectors than this. */
    static final int IOV_MAX = 1024;
    /** Chains one port may move in one cycle before others get their turn. */
    private static final int CYCLE_BUDGET = 128;
    /** Bounds of a port's gather limit (bytes one writev offers the host; it follows what the host took). */
    static final long MIN_GATHER_BYTES = 64 << 10;
    static final long MAX_GATHER_BYTES = 4 << 20;

    private final QueueMap map;
    private final ControlMachine control;
    private final QueueTable queues;
    private final DirtySet work;
    /** The host peer of a port went away (end of file or an error on its connection). */
    private final Consumer<PortRuntime> hostDisconnected;
    private final byte[] copyBuffer = new byte[4096];
    /** Scratch for one gathered writev or scattered readv (data-plane thread only). */
    private final IovBatch batch = new IovBatch();
    /** Bytes moved either way since {@link #takeMoved} last ran (data-plane thread only). */
    private long moved;

    PortPump(QueueMap map, ControlMachine control, QueueTable queues, DirtySet work,
             Consumer<PortRuntime> hostDisconnected) {
        this.map = map;
        this.control = control;
        this.queues = queues;
        this.work = work;
        this.hostDisconnected = hostDisconnected;
    }

    /** Pops a chain; when none is there, re-arms the guest's kick and looks once more. */
    static int popOrArm(SplitQueue q, Chain c) {
        int r = q.pop(c);
        if (r == 0 && q.enableNotifications()) {
            r = q.pop(c);
        }
        return r;
    }

    /**
     * Makes sure port {@code p} holds a transmit chain: the one it already holds (resumed where the
     * host left it, also across a ring restart) or a newly popped one. Returns 1 when a chain is
     * held, 0 when the queue has none (with {@code arm}, the guest's kick was re-armed), -1 when
     * a bad chain was completed with length 0 (try again).
     */
    static int holdTransmit(PortRuntime p, SplitQueue q, QueueTable queues, int txq, boolean arm) {
        if (p.transmitHeld) {
            return 1;
        }
        Chain c = p.transmitChain;
        int r = arm ? popOrArm(q, c) : q.pop(c);
        if (r == 0) {
            return 0;
        }
        if (r < 0) {
            queues.completed(txq);
            return -1;
        }
        p.transmitHeld = true;
        p.resumeCarried(q, c);
        return 1;
    }

    /** Moves what can move on port {@code p} in both directions, within one cycle's budget. */
    void service(PortRuntime p) {
        serviceTransmit(p);
        serviceReceive(p);
    }

    private void serviceTransmit(PortRuntime p) {
        SplitQueue q = p.transmit;
        if (q == null) {
            return;
        }
        if (p.isConsole()) {
            consoleTransmit(p, q);
            return;
        }
        Endpoint e = p.endpoint;
        boolean discard = e.discardsOutput();
        if (!discard && (!e.connected() || e.outputFd() < 0)) {
            return; // no host peer: hold, the guest writer waits
        }
        if (!discard && p.consoleBacklog != null && !p.consoleBacklog.isEmpty()) {
            flushConsoleBacklog(p); // a replay for a newly connected client goes first
            if (!p.consoleBacklog.isEmpty()) {
                return;
            }
        }
        int txq = map.transmitQueue(p.config.id());
        for (int budget = CYCLE_BUDGET; budget > 0; ) {
            int held = holdTransmit(p, q, queues, txq, true);
            if (held == 0) {
                queues.transmitIdle(txq); // the avail ring ran dry: the guest's burst is over
                return;
            }
            if (held < 0) {
                budget--;
                continue;
            }
            Chain c = p.transmitChain;
            if (discard) {
                p.counters.add(PortCounters.DISCARDED_BYTES, c.totalLength());
                if (p.tap != null) {
                    p.tap.fromChain(c, c.transferred(), c.remaining());
                }
                p.transmitHeld = false;
                completeTransmit(p, q, txq, c.head(), c.ringSlots());
                budget--;
                continue;
            }
            if (!p.hostWritable) {
                queues.transmitIdle(txq);
                return; // EPOLLOUT brings us back
            }
            // A tapped port copies what the host took of the held chain to its log: no other chain
            // joins it. And a slow guest's chain usually comes alone: nothing to gather, no batch.
            int done = p.tap == null && budget > 1 && q.hasAvailable() ? writeGathered(p, q, txq, e, budget)
                    : writeHeld(p, q, txq, e);
            if (done < 0) {
                queues.transmitIdle(txq);
                return;
            }
            budget -= Math.max(done, 1); // a partly taken chain: try the rest (usually EAGAIN next)
        }
        work.mark(p.config.id()); // budget used up: come back next cycle
    }

    private void completeTransmit(PortRuntime p, SplitQueue q, int txq, int head, int slots) {
        q.pushUsed(head, 0);
        p.counters.add(PortCounters.CHAINS_TO_HOST, 1);
        queues.completedTransmit(txq, slots);
    }

    /**
     * One {@code writev} of the held chain and of the chains after it (up to {@code maxChains},
     * IOV_MAX iovecs and the port's gather limit). Chains the host took whole are completed in
     * ring order; of the first one it did not take whole, what it took is carried exactly as
     * across a ring restart, and that chain and every later one are handed back to the ring, and
     * the first is popped and held again: the same state as after a partial write of one chain.
     * Called only when another chain is available (else {@link #writeHeld}: a slow guest's chain
     * comes alone, and popping nothing after it, copying its iovecs, is work for nothing).
     *
     * @return chains completed (0: a partial write of the held chain), -1: stop (EAGAIN, error)
     */
    private int writeGathered(PortRuntime p, SplitQueue q, int txq, Endpoint e, int maxChains) {
        Chain first = p.transmitChain;
        IovBatch b = batch;
        if (!b.start(first)) { // more iovecs than IOV_MAX in one chain: alone, in pieces
            return writeHeld(p, q, txq, e);
        }
        Chain s = b.scratchFor(q);
        int limit = Math.min(maxChains, IovBatch.MAX_CHAINS);
        while (b.chains < limit && b.bytes < p.gatherLimit) {
            int at = q.nextAvail();
            if (q.popGood(s) != SplitQueue.POPPED) {
                break;
            }
            if (!b.add(s, at)) {
                q.giveBack(1, s.totalLength());
                break;
            }
        }
        long n = Io.writev(e.outputFd(), b.iovAddress(), b.iovecs);
        if (n < 0) {
            giveBackFrom(q, b, 1);
            writeFailed(p, e, n);
            return -1;
        }
        movedToHost(p, n);
        long left = n;
        long firstLeft = first.remaining();
        if (left < firstLeft) {
            first.advance(left);
            giveBackFrom(q, b, 1);
            p.gatherLimit = Math.max(MIN_GATHER_BYTES, n); // the host takes about this much at a time
            hostFull(p);
            return 0;
        }
        first.advance(firstLeft);
        left -= firstLeft;
        p.transmitHeld = false;
        completeTransmit(p, q, txq, first.head(), first.ringSlots());
        int done = 1;
        for (int i = 1; i < b.chains; i++) {
            if (left < b.lengths[i]) {
                giveBackFrom(q, b, i);
                if (left > 0) {
                    p.carry(b.heads[i], b.availAt[i], left);
                    holdTransmit(p, q, queues, txq, false); // the same chain again, resumed past what was taken
                }
                p.gatherLimit = Math.max(MIN_GATHER_BYTES, n);
                hostFull(p);
                return done;
            }
            left -= b.lengths[i];
            completeTransmit(p, q, txq, b.heads[i], b.slots[i]);
            done++;
        }
        if (b.bytes >= p.gatherLimit) {
            p.gatherLimit = Math.min(MAX_GATHER_BYTES, p.gatherLimit * 2); // all taken: try more next time
        }
        return done;
    }

    /**
     * One {@code writev} of the held chain alone, from its own iovecs: nothing popped after it,
     * nothing copied. A chain the host took whole is completed; a partly taken one stays held,
     * resumed past what was taken.
     *
     * @return 1: completed, 0: partly taken, -1: stop (EAGAIN, error)
     */
    private int writeHeld(PortRuntime p, SplitQueue q, int txq, Endpoint e) {
        Chain c = p.transmitChain;
        boolean whole = c.iovCount() <= IOV_MAX; // else this writev offers only the first IOV_MAX pieces
        long n = Io.writev(e.outputFd(), c.iovAddress(), Math.min(c.iovCount(), IOV_MAX));
        if (n < 0) {
            writeFailed(p, e, n);
            return -1;
        }
        movedToHost(p, n);
        if (p.tap != null) {
            p.tap.fromChain(c, c.transferred(), n); // what the host took, once
        }
        if (c.advance(n) > 0) {
            if (whole) {
                hostFull(p);
            }
            return 0;
        }
        p.transmitHeld = false;
        completeTransmit(p, q, txq, c.head(), c.ringSlots());
        return 1;
    }

    /** Bytes moved either way (guest to host, host to guest) since the last call, which starts the count again. */
    long takeMoved() {
        long m = moved;
        moved = 0;
        return m;
    }

    private void movedToHost(PortRuntime p, long n) {
        p.counters.add(PortCounters.BYTES_TO_HOST, n);
        moved += n;
    }

    private void movedToGuest(PortRuntime p, long n) {
        p.counters.add(PortCounters.BYTES_TO_GUEST, n);
        moved += n;
    }

    /**
     * The host's socket (pipe, terminal) is full: after EAGAIN, or after a writev it took only
     * partly, since one more would only be refused. Wait for EPOLLOUT: the edge comes when the
     * host makes room, and room it made since the loop last waited is an edge waiting.
     */
    private static void hostFull(PortRuntime p) {
        p.hostWritable = false;
        p.counters.add(PortCounters.HELD_WAITS, 1);
    }

    /**
     * A readv got less than it offered: the host's socket (pipe, terminal) was empty then. Wait for
     * EPOLLIN, as after EAGAIN, instead of a readv that would only find it empty: the edge comes
     * when the host writes again, and bytes written since the loop last waited are an edge waiting.
     * Not once the host has hung up: no edge follows its end of file, so reads go on until they
     * see it.
     */
    private static void hostDrained(PortRuntime p) {
        if (!p.hostHungUp) {
            p.hostReadable = false;
        }
    }

    /** A writev to the host failed with {@code -errno}: wait for EPOLLOUT, or let the peer go (the chain stays held). */
    private void writeFailed(PortRuntime p, Endpoint e, long n) {
        if (n == -Errno.EAGAIN) {
            hostFull(p);
        } else {
            p.counters.add(PortCounters.HOST_WRITE_ERRORS, 1);
            hostLog.log(Level.WARNING, "{0}: writing to {1} failed: {2}; guest data is held for the next host peer",
                    p.label, e.describe(), Errno.describe((int) -n));
            hostDisconnected.accept(p);
        }
    }

    private static void giveBackFrom(SplitQueue q, IovBatch b, int from) {
        if (from < b.chains) {
            q.giveBack(b.chains - from, b.bytesFrom(from));
        }
        b.chains = 0;
    }

    private void consoleTransmit(PortRuntime p, SplitQueue q) {
        flushConsoleBacklog(p);
        int txq = map.transmitQueue(p.config.id());
        Chain c = p.transmitChain;
        for (int budget = CYCLE_BUDGET; budget > 0; budget--) {
            int r = popOrArm(q, c);
            if (r == 0) {
                return;
            }
            queues.completed(txq);
            if (r < 0) {
                continue;
            }
            long total = c.totalLength();
            if (p.tap != null) {
                p.tap.fromChain(c, 0, total); // a console's log has all the guest wrote
            }
            Endpoint e = p.endpoint;
            if (e.discardsOutput()) {
                p.counters.add(PortCounters.DISCARDED_BYTES, total);
            } else {
                long written = 0;
                if (p.consoleBacklog.isEmpty() && e.connected() && e.outputFd() >= 0 && p.hostWritable) {
                    long n = Io.writev(e.outputFd(), c.iovAddress(), Math.min(c.iovCount(), IOV_MAX));
                    if (n > 0) {
                        written = n;
                    } else if (n == -Errno.EAGAIN) {
                        p.hostWritable = false;
                    } else if (n < 0) {
                        hostLog.log(Level.WARNING, "{0}: console write to {1} failed: {2}", p.label, e.describe(),
                                Errno.describe((int) -n));
                        hostDisconnected.accept(p);
                    }
                }
                movedToHost(p, written);
                // What the host did not take now waits in the bounded backlog (or is counted as dropped).
                for (long off = written; off < total; ) {
                    int n = (int) Math.min(copyBuffer.length, total - off);
                    int got = c.copyOut(off, copyBuffer, 0, n);
                    if (got <= 0) {
                        break;
                    }
                    p.keepConsoleOutput(copyBuffer, 0, got);
                    off += got;
                }
            }
            q.pushUsed(c.head(), 0);
            p.counters.add(PortCounters.CHAINS_TO_HOST, 1);
        }
        work.mark(p.config.id());
    }

    /** Writes a console port's backlog to its host while the host takes it. */
    void flushConsoleBacklog(PortRuntime p) {
        ConsoleOutputBuffer b = p.consoleBacklog;
        Endpoint e = p.endpoint;
        while (!b.isEmpty() && e.connected() && e.outputFd() >= 0 && p.hostWritable) {
            long n = Io.write(e.outputFd(), b.readAddress(), b.contiguous());
            if (n == -Errno.EAGAIN) {
                p.hostWritable = false;
                return;
            }
            if (n <= 0) {
                hostDisconnected.accept(p);
                return;
            }
            b.consumed((int) n);
            movedToHost(p, n);
        }
    }

    private void serviceReceive(PortRuntime p) {
        SplitQueue q = p.receive;
        Endpoint e = p.endpoint;
        if (q == null || !control.isGuestOpen(p.config.id()) || !e.connected() || !p.hostReadable) {
            return; // host data waits in the host's socket: its writer blocks, nothing is lost
        }
        int fd = e.inputFd();
        if (fd < 0) {
            return;
        }
        int rxq = map.receiveQueue(p.config.id());
        Chain c = p.receiveChain;
        for (int budget = CYCLE_BUDGET; budget > 0; ) {
            if (!p.receiveHeld) {
                int r = popOrArm(q, c);
                if (r == 0) {
                    return; // the guest's kick when it adds buffers brings us back
                }
                if (r < 0) {
                    queues.completed(rxq);
                    budget--;
                    continue;
                }
                p.receiveHeld = true;
            }
            int limit = Math.min(Math.min(budget, p.scatterChains), IovBatch.MAX_CHAINS);
            int done = limit > 1 && q.hasAvailable() ? readScattered(p, q, rxq, e, fd, limit) : readHeld(p, q, rxq, e, fd);
            if (done < 0 || !p.hostReadable) {
                return; // EAGAIN, end of file or an error; or a read that found the host's socket emptied
            }
            budget -= done;
        }
        work.mark(p.config.id());
    }

    /**
     * One {@code readv} into the held receive chain and the buffers posted after it (up to
     * {@code limit}: as many as the port's last reads filled, within the budget; and IOV_MAX
     * iovecs). Called only when another buffer is posted; else {@link #readHeld}. Buffers that got bytes
     * are completed in ring order (the last one with what it got), buffers that got none are
     * handed back to the ring. The used entries are published once, at the end of the cycle.
     *
     * @return chains completed (at least 1), or -1: stop (EAGAIN, end of file, error)
     */
    private int readScattered(PortRuntime p, SplitQueue q, int rxq, Endpoint e, int fd, int limit) {
        Chain c = p.receiveChain;
        IovBatch b = batch;
        if (!b.start(c)) { // more iovecs than IOV_MAX in one buffer: alone
            return readHeld(p, q, rxq, e, fd);
        }
        Chain s = b.scratchFor(q);
        while (b.chains < limit) {
            if (q.popGood(s) != SplitQueue.POPPED) {
                break;
            }
            if (!b.add(s, 0)) {
                q.giveBack(1, s.totalLength());
                break;
            }
        }
        long n = Io.readv(fd, b.iovAddress(), b.iovecs);
        if (n <= 0) {
            giveBackFrom(q, b, 1);
            readFailed(p, e, n);
            return -1;
        }
        movedToGuest(p, n);
        int members = b.chains;
        long got = Math.min(n, c.totalLength());
        q.pushUsed(c.head(), (int) got);
        p.receiveHeld = false;
        long left = n - got;
        int done = 1;
        for (int i = 1; i < members && left > 0; i++) {
            long into = Math.min(left, b.lengths[i]);
            q.pushUsed(b.heads[i], (int) into);
            left -= into;
            done++;
        }
        giveBackFrom(q, b, done);
        p.counters.add(PortCounters.CHAINS_TO_GUEST, done);
        queues.completed(rxq);
        // Every buffer filled: the host had more, offer more next time; else as many as it filled.
        p.scatterChains = n == b.bytes ? Math.min(IovBatch.MAX_CHAINS, members * 2) : Math.max(1, done);
        if (n < b.bytes) {
            hostDrained(p);
        }
        return done;
    }

    /**
     * One {@code readv} into the held receive buffer alone, from its own iovecs (no other buffer
     * is offered, or none is posted after it). Filled to the brim, the next read offers two.
     *
     * @return 1: completed, or -1: stop (EAGAIN, end of file, error)
     */
    private int readHeld(PortRuntime p, SplitQueue q, int rxq, Endpoint e, int fd) {
        Chain c = p.receiveChain;
        boolean whole = c.iovCount() <= IOV_MAX; // else this readv offers only the first IOV_MAX pieces
        long n = Io.readv(fd, c.iovAddress(), Math.min(c.iovCount(), IOV_MAX));
        if (n <= 0) {
            readFailed(p, e, n);
            return -1;
        }
        movedToGuest(p, n);
        q.pushUsed(c.head(), (int) n);
        p.receiveHeld = false;
        p.counters.add(PortCounters.CHAINS_TO_GUEST, 1);
        queues.completed(rxq);
        p.scatterChains = n == c.totalLength() ? Math.min(IovBatch.MAX_CHAINS, 2) : 1;
        if (whole && n < c.totalLength()) {
            hostDrained(p);
        }
        return 1;
    }

    /** A readv from the host returned {@code n <= 0}: wait for EPOLLIN, or let the peer go (the buffer stays held). */
    private void readFailed(PortRuntime p, Endpoint e, long n) {
        if (n == -Errno.EAGAIN) {
            p.hostReadable = false;
            return;
        }
        if (n < 0) {
            hostLog.log(Level.WARNING, "{0}: reading from {1} failed: {2}", p.label, e.describe(),
                    Errno.describe((int) -n));
        }
        hostDisconnected.accept(p); // the held receive buffer waits for the next peer
    }
}
