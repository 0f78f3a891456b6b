package io.vportd.console.device;

import io.vportd.sys.Errno;
import io.vportd.sys.Epoll;
import io.vportd.sys.EventFd;
import io.vportd.vhost.QueueSetup;
import io.vportd.vring.Chain;
import io.vportd.vring.Direction;
import io.vportd.vring.GuestMemory;
import io.vportd.vring.QueueStats;
import io.vportd.vring.SplitQueue;
import java.lang.System.Logger.Level;

/**
 * The device's virtqueues: starting and stopping them (attaching each to its port or to the
 * control queues, giving held chains back on stop), the memory table they read through, and
 * publishing their completions (interrupting the guest). Confined to the data-plane thread.
 */
final class QueueTable {

    private static final System.Logger LOG = System.getLogger("vportd.device");

    /**
     * Completions of generic-port transmit chains are not published at the end of every cycle:
     * the guest only reuses those buffers, nothing waits on them, and each interrupt is costly
     * for it (vhost-user-test-device-pci has no MSI-X, so every one is a shared INTx that makes
     * the driver scan every queue; batching cut guest interrupts tenfold, docs/benchmarks-guest.md).
     * They are counted in ring slots (descriptor-table entries, what the driver gets back), and
     * published
     * <ul>
     * <li>when the guest's burst is over (the pump found the avail ring dry, or the host full) and
     *     at least {@link #TX_PUBLISH_SLOTS} slots (a quarter of a smaller ring) wait: a batch worth
     *     an interrupt, handed back before the driver can run short;
     * <li>at once when half the ring's slots wait, so a driver refilling a ring of long chains
     *     never waits for a batch it cannot complete itself;
     * <li>otherwise {@link #TX_LINGER_NANOS} after they began to wait.
     * </ul>
     * Counting chains instead held back rings of long chains (8 chains of 32 descriptors fill a
     * 256-entry ring, a 32-chain batch never forms): every refill waited for the 1 ms timer
     * (issue 14, docs/benchmarks-devlimit.md).
     */
    static final int TX_PUBLISH_SLOTS = 32;
    private static final long TX_LINGER_NANOS = 1_000_000;

    private final QueueMap map;
    private final int epollFd;
    private final PortRuntime[] ports;
    private final DirtySet work;
    private final ControlQueues control;
    private final SplitQueue[] queues;
    private final QueueStats[] queueStats;
    private final int[] kickFds;
    private final int[] callFds;
    /** Queues with used entries not yet published. */
    private final DirtySet completed;
    /** Per queue: ring slots of completions pushed but not yet published (generic transmit queues only). */
    private final int[] txUnpublished;
    /** Per queue: the pump said the guest's burst is over since the last completion. */
    private final boolean[] txIdle;
    /** When deferred transmit completions must be published at the latest (System.nanoTime), 0 if none wait. */
    private long txLingerDeadline;
    private GuestMemory memory = GuestMemory.empty();
    /** The linger's clock (System.nanoTime; tests hold it still). */
    java.util.function.LongSupplier clock = System::nanoTime;

    private final DeviceCounters deviceCounters;

    QueueTable(QueueMap map, int epollFd, PortRuntime[] ports, DirtySet work, ControlQueues control,
            DeviceCounters deviceCounters) {
        this.map = map;
        this.deviceCounters = deviceCounters;
        this.epollFd = epollFd;
        this.ports = ports;
        this.work = work;
        this.control = control;
        int n = map.queueCount();
        this.queues = new SplitQueue[n];
        this.queueStats = new QueueStats[n];
        for (int i = 0; i < n; i++) {
            // One counter set per queue index for the device's life: counts survive ring restarts.
            queueStats[i] = new QueueStats();
        }
        this.kickFds = new int[n];
        this.callFds = new int[n];
        this.completed = new DirtySet(n);
        this.txUnpublished = new int[n];
        this.txIdle = new boolean[n];
        java.util.Arrays.fill(kickFds, -1);
        java.util.Arrays.fill(callFds, -1);
    }

    /** Queues still running (a live hand-over needs none). */
    int runningCount() {
        int n = 0;
        for (SplitQueue q : queues) {
            if (q != null) {
                n++;
            }
        }
        return n;
    }

    int count() {
        return queues.length;
    }

    SplitQueue get(int index) {
        return queues[index];
    }

    QueueStats stats(int index) {
        return index >= 0 && index < queueStats.length ? queueStats[index] : null;
    }

    /** Queue {@code q} has new used entries: publish them this cycle. */
    void completed(int q) {
        completed.mark(q);
    }

    /** A generic transmit chain of queue {@code q} occupying {@code slots} ring slots was completed: its publication may be deferred. */
    void completedTransmit(int q, int slots) {
        completed.mark(q);
        txUnpublished[q] += Math.max(slots, 1);
        txIdle[q] = false;
    }

    /** The pump stopped on generic transmit queue {@code q} for want of guest chains or host room. */
    void transmitIdle(int q) {
        txIdle[q] = true;
    }

    /** True while deferred transmit completions wait for their linger deadline. */
    boolean lingering() {
        return txLingerDeadline != 0;
    }

    /**
     * The guest kicked queue {@code index}: the port (or control queues) it belongs to has work.
     * Returns what draining the kick eventfd returned (negative errno when it failed: the caller
     * stops the ring rather than spin on a descriptor that stays readable).
     */
    long kicked(int index) {
        if (index < 0 || index >= kickFds.length || kickFds[index] < 0) {
            return 0;
        }
        long drained = EventFd.drain(kickFds[index]);
        if (drained < 0 && drained != -io.vportd.sys.Errno.EAGAIN) {
            return drained;
        }
        int port = map.portOf(index);
        if (port == QueueMap.CONTROL) {
            work.mark(ports.length);
        } else if (port >= 0 && ports[port] != null) {
            work.mark(port);
        }
        return drained;
    }

    /** Publishes what is due: every completed queue except generic transmit queues letting completions gather. */
    void publishDue() {
        long now = clock.getAsLong();
        boolean lingerOver = txLingerDeadline != 0 && now - txLingerDeadline >= 0;
        boolean deferred = false;
        for (int q = completed.next(0); q >= 0; q = completed.next(q + 1)) {
            int waiting = txUnpublished[q];
            SplitQueue vq = queues[q];
            if (waiting > 0 && !lingerOver && vq != null && !transmitDue(waiting, txIdle[q], vq.size())) {
                deferred = true; // a generic transmit queue with few completions: let them gather
                continue;
            }
            publish(q);
        }
        if (!deferred) {
            txLingerDeadline = 0;
        } else if (txLingerDeadline == 0 || lingerOver) {
            txLingerDeadline = now + TX_LINGER_NANOS;
        }
    }

    /** Whether {@code waiting} unpublished transmit slots of a ring of {@code size} are published now (see {@link #TX_PUBLISH_SLOTS}). */
    static boolean transmitDue(int waiting, boolean burstOver, int size) {
        return waiting >= Math.max(1, size / 2) || burstOver && waiting >= Math.max(1, Math.min(TX_PUBLISH_SLOTS, size / 4));
    }

    /** Publishes queue {@code q}'s used entries and interrupts the guest if it asked for that. */
    private void publish(int q) {
        completed.clear(q);
        txUnpublished[q] = 0;
        txIdle[q] = false;
        SplitQueue vq = queues[q];
        if (vq != null && vq.publishUsed() && callFds[q] >= 0
                && EventFd.signal(callFds[q]) == -io.vportd.sys.Errno.EAGAIN) {
            deviceCounters.callsSaturated.increment(); // counter at its maximum: the guest is interrupted anyway
        }
    }

    /**
     * Signals every running ring's call descriptor once: after a crash recovery, the guest may be
     * waiting for an interrupt the crashed process never sent (a spurious one is harmless).
     */
    void signalAll() {
        for (int q = 0; q < queues.length; q++) {
            if (queues[q] != null && callFds[q] >= 0) {
                EventFd.signal(callFds[q]);
            }
        }
    }

    void start(int index, QueueSetup s) {
        if (index < 0 || index >= queues.length) {
            throw new IllegalArgumentException("queue " + index + " is outside the device's " + queues.length);
        }
        if (queues[index] != null) {
            stop(index);
        }
        Direction dir = QueueMap.isDeviceWrites(index) ? Direction.DEVICE_WRITES : Direction.DEVICE_READS;
        QueueStats stats = queueStats[index];
        SplitQueue q = new SplitQueue(index, s.size(), s.desc(), s.avail(), s.used(), s.eventIdx(), dir, stats);
        q.setMemory(memory);
        q.setNextAvail(s.firstAvailIndex());
        int r = Epoll.ctl(epollFd, Epoll.EPOLL_CTL_ADD, s.kickFd(), Epoll.EPOLLIN,
                DataPlane.token(DataPlane.KIND_KICK, index, 0));
        if (r < 0) {
            throw new IllegalStateException("cannot watch the kick eventfd of queue " + index + ": " + Errno.describe(-r));
        }
        queues[index] = q;
        kickFds[index] = s.kickFd();
        callFds[index] = s.callFd();
        int port = map.portOf(index);
        if (port == QueueMap.CONTROL) {
            control.attach(index, q, s.firstAvailIndex());
            work.mark(ports.length);
        } else if (port >= 0 && ports[port] != null) {
            ports[port].attach(q);
            work.mark(port);
        }
        LOG.log(Level.DEBUG, "queue {0} started: {1} entries, event idx {2}", index, s.size(), s.eventIdx());
    }

    /** A hot-added port: the guest started all queues at driver-ok, so this id's queues may run already. */
    void attachRunning(PortRuntime p) {
        int rx = map.receiveQueue(p.config.id());
        int tx = map.transmitQueue(p.config.id());
        if (rx >= 0 && rx < queues.length && queues[rx] != null) {
            p.attach(queues[rx]);
        }
        if (tx >= 0 && tx < queues.length && queues[tx] != null) {
            p.attach(queues[tx]);
        }
    }

    /** Stops a queue; returns the avail index to resume at (a held chain is offered again). */
    int stop(int index) {
        if (index < 0 || index >= queues.length || queues[index] == null) {
            return 0;
        }
        if (completed.contains(index)) {
            publish(index); // completions still gathering go to the guest before the ring stops
        }
        SplitQueue q = queues[index];
        Epoll.ctl(epollFd, Epoll.EPOLL_CTL_DEL, kickFds[index], 0, 0);
        int next = q.nextAvail();
        int port = map.portOf(index);
        if (port == QueueMap.CONTROL) {
            next = control.detach(index, next);
        } else if (port >= 0 && ports[port] != null) {
            next = ports[port].detach(q, next);
        }
        queues[index] = null;
        kickFds[index] = -1;
        callFds[index] = -1;
        completed.clear(index);
        txUnpublished[index] = 0;
        return next;
    }

    /**
     * Stops every ring without publishing anything: guest memory faulted, and any write to it
     * (used entries, held chains) would fault again.
     */
    void abandonAll() {
        for (int i = 0; i < queues.length; i++) {
            completed.clear(i);
            txUnpublished[i] = 0;
        }
        txLingerDeadline = 0;
        stopAll();
    }

    void stopAll() {
        for (int i = 0; i < queues.length; i++) {
            stop(i);
        }
    }

    /**
     * Installs a new memory table. The backend contract (vhost-user's Session) is that every ring
     * is stopped first, and stopping a ring gives its held chain back to be popped again; so no
     * held chain can point into the old table here, and none is re-checked.
     */
    void setMemory(GuestMemory m) {
        memory = m;
        for (SplitQueue q : queues) {
            if (q != null) {
                q.setMemory(m);
            }
        }
    }
}
