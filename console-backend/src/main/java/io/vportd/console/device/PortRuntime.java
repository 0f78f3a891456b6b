package io.vportd.console.device;

import io.vportd.console.control.PortConfig;
import io.vportd.console.endpoint.Endpoint;
import io.vportd.vring.Chain;
import io.vportd.vring.Direction;
import io.vportd.vring.SplitQueue;

/**
 * Everything the data plane keeps for one port. Confined to the data-plane thread; the counters
 * are read by other threads only through {@link PortCounters}, which publishes them.
 */
final class PortRuntime {

    final PortConfig config;
    final String label;
    final Endpoint endpoint;
    final PortCounters counters = new PortCounters();

    SplitQueue receive;   // device writes: host to guest
    SplitQueue transmit;  // device reads: guest to host
    Chain receiveChain;
    Chain transmitChain;
    /** A popped transmit chain whose bytes the host has not taken completely yet. */
    boolean transmitHeld;
    /** A popped receive chain waiting for host bytes. */
    boolean receiveHeld;

    /**
     * The management API has heard of the port (its port-added event went out): host-connected
     * events wait until then. The port's protocol state (life cycle, guest open, host connected)
     * is the control machine's alone: see {@link io.vportd.console.control.PortView}.
     */
    boolean added;
    /** The endpoint is being rebuilt from a live hand-over: its host peer is not a new client. */
    boolean handingOver;
    /** Bytes one gathered writev offers the host at most: follows what the host took (see PortPump). */
    long gatherLimit = 256 << 10;
    /** Receive buffers one scattered readv fills at most: follows how many the last reads filled. */
    int scatterChains = 1;

    /**
     * Edge-triggered readiness of the host connection, cleared on EAGAIN, and after a read or a
     * write the host did not fill or take whole (the next edge says when there is more).
     */
    boolean hostReadable;
    boolean hostWritable;
    /** The host's end said it hung up (or failed): reads go on until they see the end of file. */
    boolean hostHungUp;

    /**
     * A transmit chain partly taken by the host when its ring stopped: its head, its avail index
     * and the bytes already taken. When the restarted ring offers the same chain again, those
     * bytes are skipped, so nothing is sent twice. 0 bytes = nothing carried.
     */
    private int carriedHead;
    private int carriedAvail;
    private long carriedTaken;

    final ConsoleOutputBuffer consoleBacklog;
    /** Last window size seen on a terminal endpoint (packed cols<<16|rows), 0 before the first look. */
    int terminalSize;

    /**
     * Copy of the guest output for the log, the replay ring and followers, or null. Set by the
     * data-plane thread (also later, when a first follower comes).
     */
    PortTap tap;

    PortRuntime(PortConfig config, Endpoint endpoint, int consoleBacklogBytes) {
        this(config, endpoint, consoleBacklogBytes, null);
    }

    /**
     * With the port's log writer (opened, not started; null for none). A console's backlog is at
     * least its replay ring, so a replay fits it; a generic port with a replay ring gets a backlog
     * for the replay only (its guest output is never kept there).
     */
    PortRuntime(PortConfig config, Endpoint endpoint, int consoleBacklogBytes, io.vportd.console.portlog.LogWriter writer) {
        this.config = config;
        this.endpoint = endpoint;
        this.label = labelOf(config);
        int replay = config.log().replayBytes();
        this.consoleBacklog = config.console() ? new ConsoleOutputBuffer(Math.max(consoleBacklogBytes, replay))
                : replay > 0 ? new ConsoleOutputBuffer(replay) : null;
        this.tap = writer != null || replay > 0 ? new PortTap(counters, writer, replay) : null;
    }

    /**
     * A host client connected: with a replay ring, the client's first bytes are the ring (the
     * last guest output, which includes anything a console backlog held), and live output
     * follows through the backlog, so the seam has neither a gap nor a repeat.
     */
    void replayToNewClient() {
        if (tap == null || tap.replay == null || consoleBacklog == null) {
            return;
        }
        consoleBacklog.consumed(consoleBacklog.size());
        byte[] r = tap.snapshot();
        consoleBacklog.append(r, 0, r.length);
    }

    /** Attaches a started queue of this port (direction from the queue). */
    void attach(SplitQueue q) {
        if (q.direction() == Direction.DEVICE_WRITES) {
            receive = q;
            receiveChain = new Chain(q.size());
            receiveHeld = false;
        } else {
            transmit = q;
            transmitChain = new Chain(q.size());
            transmitHeld = false;
        }
    }

    /**
     * Detaches a stopping queue of this port; returns the avail index to resume at ({@code next},
     * one less when a popped chain is handed back to be popped again).
     */
    int detach(SplitQueue q, int next) {
        Chain released = null;
        if (receive == q) {
            if (receiveHeld) {
                next = (next - 1) & 0xffff;
                receiveHeld = false;
            }
            released = receiveChain;
            receive = null;
            receiveChain = null;
        } else if (transmit == q) {
            if (transmitHeld) {
                // The guest's bytes were not all taken: the chain is offered again after a
                // restart, and what the host already took is carried so it is not sent twice.
                next = (next - 1) & 0xffff;
                transmitHeld = false;
                carriedTaken = transmitChain.transferred();
                carriedHead = transmitChain.head();
                carriedAvail = next;
            }
            released = transmitChain;
            transmit = null;
            transmitChain = null;
        }
        if (released != null) {
            released.close();
        }
        return next;
    }

    /** Just popped {@code c} from the transmit queue: skip what the host took of it before a ring restart. */
    void resumeCarried(SplitQueue q, Chain c) {
        if (carriedTaken == 0) {
            return;
        }
        long taken = carriedTaken;
        carriedTaken = 0;
        // The same chain at the same place (the guest may have reused the head elsewhere after a reset).
        if (c.head() == carriedHead && ((q.nextAvail() - 1) & 0xffff) == carriedAvail && taken < c.remaining()) {
            c.advance(taken);
        }
    }

    /** The carried partial chain as {head, avail index, bytes taken} (a live hand-over passes it on). */
    long[] carried() {
        return new long[] {carriedHead, carriedAvail, carriedTaken};
    }

    /**
     * The host took {@code taken} bytes of the chain at avail position {@code avail} (head
     * {@code head}) that is not held now: when it is popped again there, they are skipped, as
     * after a ring restart. Two callers: a live hand-over passing on the previous process's
     * partial chain (see {@link #carried}), and a gathered writev that ended inside a later
     * chain, which was handed back to the ring (PortPump).
     */
    void carry(int head, int avail, long taken) {
        if (taken < 0 || (avail & ~0xffff) != 0 || head < 0) {
            throw new IllegalArgumentException(label + ": carried chain head " + head + " avail " + avail + " taken " + taken);
        }
        carriedHead = head;
        carriedAvail = avail;
        carriedTaken = taken;
    }

    /** The device was reset: a carried partial chain belongs to a ring that is gone. */
    void forgetCarried() {
        carriedTaken = 0;
    }

    /** The endpoint's own counters as registered for export, or null. */
    io.vportd.telemetry.MetricRegistry.Entry endpointMetrics;
    /** The log writer's own counters as registered for export, or null. */
    io.vportd.telemetry.MetricRegistry.Entry logMetrics;

    static String labelOf(PortConfig c) {
        return c.name() == null ? "port " + c.id() : "port " + c.id() + " (" + c.name() + ")";
    }

    /** Console output the host cannot take now: into the bounded backlog, the overflow counted as dropped. */
    void keepConsoleOutput(byte[] src, int off, int len) {
        int kept = consoleBacklog.append(src, off, len);
        counters.add(PortCounters.CONSOLE_DROPPED_BYTES, len - kept);
    }

    boolean isConsole() {
        return config.console();
    }
}
