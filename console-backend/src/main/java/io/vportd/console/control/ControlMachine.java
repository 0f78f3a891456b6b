package io.vportd.console.control;

import io.vportd.telemetry.LogLimiter;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Objects;

import static io.vportd.console.control.ControlMessage.CONSOLE_PORT;
import static io.vportd.console.control.ControlMessage.DEVICE_READY;
import static io.vportd.console.control.ControlMessage.HEADER_SIZE;
import static io.vportd.console.control.ControlMessage.MAX_MESSAGE_SIZE;
import static io.vportd.console.control.ControlMessage.PORT_ADD;
import static io.vportd.console.control.ControlMessage.PORT_OPEN;
import static io.vportd.console.control.ControlMessage.PORT_READY;
import static io.vportd.console.control.ControlMessage.PORT_REMOVE;
import static io.vportd.console.control.ControlMessage.RESIZE_PAYLOAD_SIZE;

/**
 * The virtio-console multiport control protocol, device side, without any I/O.
 *
 * <p>Inputs are method calls: configuration ({@link #addPort}, {@link #removePort}), guest
 * control messages ({@link #onGuestMessage}), host endpoint events ({@link #hostConnected},
 * {@link #hostDisconnected}, {@link #resize}) and device events ({@link #setSizeNegotiated},
 * {@link #deviceReset}). Outputs are control messages for the guest, taken one at a time with
 * {@link #pollOutgoing} whenever a guest control-receive buffer is available, and
 * {@link ControlListener} callbacks made synchronously from the inputs.
 *
 * <h2>Outgoing messages: bounded by construction, lossless, coalescing</h2>
 * Nothing is queued as a message. Each port carries a small set of pending announcement bits
 * (PORT_ADD, CONSOLE_PORT, PORT_NAME, RESIZE, PORT_OPEN, or PORT_REMOVE alone). A message is
 * produced from the port's current state only when polled: RESIZE carries the latest size and
 * PORT_OPEN the latest host connection state, so floods of resizes or connects/disconnects
 * coalesce, and a change that returns to what the guest was last told cancels the pending bit.
 * At most {@link #MAX_PENDING_PER_PORT} messages are ever pending per port. Within a port the
 * order is fixed: REMOVE (which cancels everything else), ADD, CONSOLE_PORT, PORT_NAME, RESIZE,
 * PORT_OPEN, which is QEMU's order after PORT_READY. Between ports, polling is round-robin
 * starting at the lowest id after DEVICE_READY, so PORT_ADDs go out in id order.
 *
 * <h2>Decisions where the protocol leaves room</h2>
 * <ul>
 * <li>A repeated PORT_READY 1 for a ready port re-announces CONSOLE_PORT, PORT_NAME, RESIZE and
 *     PORT_OPEN 1 (if connected): the guest ignores what it already knows, and a guest that
 *     lost its state gets it back. It is counted as {@code duplicateReady}; no listener call.</li>
 * <li>A repeated DEVICE_READY 1 is counted and ignored: no port is added twice.</li>
 * <li>PORT_READY while the device is not ready (after {@link #deviceReset}, no DEVICE_READY since)
 *     is a hibernation restore: the device becomes ready, the port is treated as added and is
 *     announced, ports the guest never heard of before the reset get PORT_ADD, and ports removed
 *     around the reset get PORT_REMOVE. Ports that were announced before the reset wait for
 *     their own PORT_READY from the guest. (A fresh driver always starts with DEVICE_READY.)</li>
 * <li>PORT_READY for a port whose PORT_ADD has not gone out yet, while the device is ready and
 *     the port was not announced before a reset, answers an earlier incarnation of the id
 *     (removed and re-added meanwhile): it is counted as {@code staleReady} and ignored.</li>
 * <li>Guest PORT_OPEN for a port that is not ready is recorded and reported (counted as
 *     {@code openBeforeReady}).</li>
 * <li>Guest messages for a port being removed count as {@code unknownPort} and are ignored.</li>
 * </ul>
 *
 * <p>Not thread-safe: one thread drives a machine. {@link #stats()} may be read by any thread.
 *
 * <p>Size: over 700 lines on purpose. Every transition of a port's state and every pending bit it
 * sets lives here, next to the rules above; split by message type, each part would need the
 * others' bookkeeping, and the invariants (at most one message per bit, REMOVE cancels the rest)
 * could no longer be checked by reading one file.
 */
public final class ControlMachine {

    private static final System.Logger LOG = System.getLogger(ControlMachine.class.getName());

    /** Largest max_nr_ports the Linux guest accepts. */
    public static final int MAX_PORTS_LIMIT = 0x8000;

    /** Most messages that can be pending for one port at any time. */
    public static final int MAX_PENDING_PER_PORT = 5;

    // Pending bits; a lower bit goes out first.
    static final int P_REMOVE = 1;
    static final int P_ADD = 1 << 1;
    static final int P_CONSOLE = 1 << 2;
    static final int P_NAME = 1 << 3;
    static final int P_RESIZE = 1 << 4;
    static final int P_OPEN = 1 << 5;
    private static final int P_AFTER_READY = P_CONSOLE | P_NAME | P_RESIZE | P_OPEN;

    private static final class Port {
        final PortConfig config;
        final byte[] name;
        PortState state = PortState.CONFIGURED;
        boolean guestOpen;
        boolean hostConnected;
        int cols;
        int rows;
        int pending;
        /** PORT_OPEN value the guest was last sent (false until one is sent). */
        boolean openSent;
        /** Size the guest was last sent in a RESIZE (0x0 until one is sent). */
        int sentCols;
        int sentRows;
        /** The port had been announced to the guest before the last reset (restore support). */
        boolean announcedBeforeReset;
        /** Configuration to add under the same id once PORT_REMOVE has gone out. */
        PortConfig reAdd;
        /** Host connection state of the queued re-add (its endpoint runs already). */
        boolean reAddHostConnected;

        Port(PortConfig config) {
            this.config = config;
            this.name = config.name() == null ? null : config.nameUtf8();
            this.cols = config.cols();
            this.rows = config.rows();
        }
    }

    private final int maxPorts;
    private final ControlListener listener;
    private final ControlStats stats = new ControlStats();
    /** Every line the guest can cause goes through this one limiter. */
    private final LogLimiter guestLog;
    private final Port[] ports;
    /** Ids of ports whose pending set is not empty. */
    private final BitSet pendingPorts;
    private int cursor;
    private boolean deviceReady;
    private boolean multiport = true;
    private boolean sizeNegotiated;

    /**
     * @param maxPorts max_nr_ports of the device, 1..0x8000 (the device itself caps it at 511)
     * @param listener receives the callbacks; use {@link ControlListener#NONE} to ignore them
     */
    public ControlMachine(int maxPorts, ControlListener listener) {
        this(maxPorts, listener, new LogLimiter(LOG));
    }

    /** As above, with the limiter for guest-caused log lines given (tests pass one with a fake clock). */
    ControlMachine(int maxPorts, ControlListener listener, LogLimiter guestLog) {
        this.guestLog = Objects.requireNonNull(guestLog, "guestLog");
        if (maxPorts < 1 || maxPorts > MAX_PORTS_LIMIT) {
            throw new IllegalArgumentException("maxPorts must be 1.." + MAX_PORTS_LIMIT + ", got " + maxPorts);
        }
        this.maxPorts = maxPorts;
        this.listener = Objects.requireNonNull(listener, "listener");
        this.ports = new Port[maxPorts];
        this.pendingPorts = new BitSet(maxPorts);
    }

    // ------------------------------------------------------------------ live hand-over

    /** The whole state as values, for a live hand-over. */
    public MachineState snapshot() {
        List<MachineState.PortRecord> list = new ArrayList<>();
        for (Port p : ports) {
            if (p != null) {
                list.add(new MachineState.PortRecord(p.config, p.state, p.guestOpen, p.hostConnected, p.cols, p.rows,
                        p.pending, p.openSent, p.sentCols, p.sentRows, p.announcedBeforeReset, p.reAdd,
                        p.reAddHostConnected));
            }
        }
        return new MachineState(deviceReady, multiport, sizeNegotiated, cursor, list);
    }

    /**
     * Takes over the state of the machine a previous process ran (this one must be fresh): no
     * listener is called and nothing is queued that was not pending there.
     *
     * @throws IllegalArgumentException the state does not fit (port id not below max ports, a
     *                                  port twice, too many pending messages, machine not fresh)
     */
    public void restore(MachineState s) {
        for (Port p : ports) {
            if (p != null) {
                throw new IllegalStateException("restore needs a fresh control machine");
            }
        }
        if (s.cursor() < 0 || s.cursor() >= maxPorts) {
            throw new IllegalArgumentException("cursor " + s.cursor() + " is not below max ports " + maxPorts);
        }
        for (MachineState.PortRecord r : s.ports()) {
            int id = r.config().id();
            if (id >= maxPorts || ports[id] != null) {
                throw new IllegalArgumentException("port " + id + " does not fit max ports " + maxPorts + " or comes twice");
            }
            if (Integer.bitCount(r.pending()) > MAX_PENDING_PER_PORT || (r.pending() & ~0x3f) != 0) {
                throw new IllegalArgumentException("port " + id + ": pending set 0x" + Integer.toHexString(r.pending())
                        + " is not one this machine produces");
            }
            Port p = new Port(r.config());
            p.state = r.state();
            p.guestOpen = r.guestOpen();
            p.hostConnected = r.hostConnected();
            p.cols = r.cols();
            p.rows = r.rows();
            p.pending = r.pending();
            p.openSent = r.openSent();
            p.sentCols = r.sentCols();
            p.sentRows = r.sentRows();
            p.announcedBeforeReset = r.announcedBeforeReset();
            p.reAdd = r.reAdd();
            p.reAddHostConnected = r.reAddHostConnected();
            ports[id] = p;
            if (p.pending != 0) {
                pendingPorts.set(id);
            }
        }
        deviceReady = s.deviceReady();
        multiport = s.multiport();
        sizeNegotiated = s.sizeNegotiated();
        cursor = s.cursor();
    }

    // ------------------------------------------------------------------ configuration inputs

    /**
     * Adds a port. Before DEVICE_READY it is only remembered; afterwards PORT_ADD is queued at once.
     * If the id belongs to a port whose PORT_REMOVE is still queued, the new port replaces it as
     * soon as PORT_REMOVE has gone out.
     *
     * @throws IllegalArgumentException if the id is not below max ports, is in use, or the name
     *                                  is used by another port
     */
    public void addPort(PortConfig config) {
        Objects.requireNonNull(config, "config");
        int id = config.id();
        if (id >= maxPorts) {
            throw new IllegalArgumentException("port id " + id + " is not below max ports " + maxPorts);
        }
        if (config.name() != null) {
            for (Port p : ports) {
                if (p == null) {
                    continue;
                }
                boolean clash = p.state != PortState.REMOVING && config.name().equals(p.config.name())
                        || p.reAdd != null && config.name().equals(p.reAdd.name());
                if (clash) {
                    throw new IllegalArgumentException("port name '" + config.name() + "' is already used by port "
                            + p.config.id());
                }
            }
        }
        Port existing = ports[id];
        if (existing != null) {
            if (existing.state == PortState.REMOVING && existing.reAdd == null) {
                existing.reAdd = config;
                LOG.log(System.Logger.Level.DEBUG, "port {0}: re-add queued behind PORT_REMOVE", str(id));
                return;
            }
            throw new IllegalArgumentException("port id " + id + " already exists");
        }
        install(config);
    }

    private Port install(PortConfig config) {
        Port p = new Port(config);
        ports[config.id()] = p;
        if (deviceReady) {
            setPending(p, P_ADD);
        }
        return p;
    }

    /**
     * Removes a port. If the guest was told about it (PORT_ADD went out), PORT_REMOVE is queued
     * and replaces anything else pending for it; {@link ControlListener#portRemoved} follows when
     * PORT_REMOVE is polled. Otherwise the port simply disappears and portRemoved is called at
     * once. (Between a reset and the next DEVICE_READY, a port announced before the reset is kept
     * as a tombstone in state REMOVING until the guest shows whether it is fresh or restored.)
     * A guest-open port is reported closed. Calling it for a port already being removed cancels a
     * queued re-add.
     *
     * @return false if there is no such port (or it is already being removed with no re-add)
     */
    public boolean removePort(int id) {
        Port p = port(id);
        if (p == null) {
            LOG.log(System.Logger.Level.DEBUG, "removePort({0}): no such port", str(id));
            return false;
        }
        if (p.state == PortState.REMOVING) {
            if (p.reAdd != null) {
                p.reAdd = null;
                p.reAddHostConnected = false;
                return true;
            }
            return false;
        }
        boolean wasOpen = p.guestOpen;
        p.guestOpen = false;
        if (p.state.announced() || p.announcedBeforeReset) {
            // The guest has the port (or, after a reset, a restored guest may still have it).
            p.state = PortState.REMOVING;
            p.pending = 0;
            p.announcedBeforeReset = !deviceReady;
            if (deviceReady) {
                setPending(p, P_REMOVE);
            }
            // else: a tombstone, resolved by the next DEVICE_READY (dropped) or restore (PORT_REMOVE)
            if (wasOpen) {
                listener.guestClosed(id);
            }
        } else {
            free(p);
            if (wasOpen) {
                listener.guestClosed(id);
            }
            listener.portRemoved(id);
        }
        return true;
    }

    private void free(Port p) {
        int id = p.config.id();
        ports[id] = null;
        pendingPorts.clear(id);
    }

    // ------------------------------------------------------------------ guest input

    /**
     * Handles one buffer the guest put on the control transmit queue. Never throws for any
     * content or bounds: bad messages are counted in {@link #stats()}, logged (rate-limited) and
     * ignored. Bytes after the 8-byte header are ignored (the guest sends no payloads).
     */
    public void onGuestMessage(byte[] buf, int off, int len) {
        if (!ControlMessage.headerFits(buf, off, len)) {
            long n = stats.malformed.increment();
            guestLog.log(System.Logger.Level.WARNING, "guest control message too short or out of bounds (len {0}); "
                        + "{1} so far", str(len), str(n));
            return;
        }
        int id = ControlMessage.getLe32(buf, off);
        int event = ControlMessage.getLe16(buf, off + 4);
        int value = ControlMessage.getLe16(buf, off + 6);
        ControlMessage.Rejection why = ControlMessage.checkFromGuest(id, event, value, maxPorts);
        if (why != null) {
            reject(why, id, event, value);
            return;
        }
        switch (event) {
            case DEVICE_READY -> onDeviceReady(value == 1);
            case PORT_READY -> onPortReady(id, value == 1);
            case PORT_OPEN -> onGuestOpen(id, value == 1);
            default -> throw new AssertionError("checkFromGuest let event " + event + " through");
        }
    }

    private void reject(ControlMessage.Rejection why, int id, int event, int value) {
        long n = switch (why) {
            case SHORT -> stats.malformed.increment();
            case UNKNOWN_EVENT -> stats.unknownEvent.increment();
            case WRONG_DIRECTION -> stats.wrongDirection.increment();
            case ID_OUT_OF_RANGE -> stats.idOutOfRange.increment();
            case BAD_VALUE -> stats.badValue.increment();
        };
        guestLog.log(System.Logger.Level.WARNING, "guest control message rejected ({0}): {1} id={2} value={3}; "
                    + "{4} so far", why, ControlMessage.eventName(event), Integer.toUnsignedString(id), str(value), str(n));
    }

    private Port liveGuestPort(int id, int event) {
        Port p = ports[id];
        if (p == null || p.state == PortState.REMOVING) {
            long n = stats.unknownPort.increment();
            guestLog.log(System.Logger.Level.WARNING, "guest {0} for unknown port {1} ignored; {2} so far",
                        ControlMessage.eventName(event), str(id), str(n));
            return null;
        }
        return p;
    }

    private void onDeviceReady(boolean ok) {
        stats.messagesIn.increment();
        if (!ok) {
            long n = stats.deviceReadyFailed.increment();
            guestLog.log(System.Logger.Level.WARNING, "guest reported DEVICE_READY 0 (driver failed to set up)");
            listener.deviceReady(false);
            return;
        }
        if (deviceReady) {
            long n = stats.duplicateDeviceReady.increment();
            guestLog.log(System.Logger.Level.INFO, "repeated DEVICE_READY ignored; {0} so far", str(n));
            return;
        }
        guestLog.log(System.Logger.Level.INFO, "guest driver ready; announcing ports");
        deviceReady = true;
        cursor = 0;
        List<Integer> removed = new ArrayList<>();
        for (int id = 0; id < maxPorts; id++) {
            Port p = ports[id];
            if (p == null) {
                continue;
            }
            if (p.state == PortState.REMOVING) {
                // A tombstone left by a reset: a fresh driver never heard of it.
                ports[id] = null;
                removed.add(id);
                if (p.reAdd != null) {
                    install(p.reAdd).hostConnected = p.reAddHostConnected;
                }
                continue;
            }
            p.announcedBeforeReset = false; // a fresh driver knows no port
            if (p.state == PortState.CONFIGURED) {
                setPending(p, P_ADD);
            }
        }
        listener.deviceReady(true);
        for (int id : removed) {
            listener.portRemoved(id);
        }
    }

    private void onPortReady(int id, boolean ok) {
        boolean implied = false;
        if (!deviceReady && ports[id] != null) {
            implied = true;
            enterRestored(id);
        }
        Port p = liveGuestPort(id, PORT_READY);
        if (p == null) {
            if (implied) {
                listener.deviceReady(true);
            }
            return;
        }
        if (p.state == PortState.CONFIGURED && !implied && !p.announcedBeforeReset) {
            // The guest cannot have this port: its PORT_ADD has not gone out. This is a reply to
            // an earlier incarnation of the id (removed and re-added since); ignore it.
            long n = stats.staleReady.increment();
            guestLog.log(System.Logger.Level.INFO, "stale PORT_READY for port {0} (PORT_ADD not sent yet) ignored", str(id));
            return;
        }
        stats.messagesIn.increment();
        if (p.state == PortState.CONFIGURED) {
            stats.readyWithoutDeviceReady.increment();
        }
        PortState before = p.state;
        clearPending(p, P_ADD);
        if (!ok) {
            stats.portReadyFailed.increment();
            p.state = PortState.FAILED;
            clearPending(p, P_AFTER_READY);
            if (implied) {
                listener.deviceReady(true);
            }
            if (before != PortState.FAILED) {
                guestLog.log(System.Logger.Level.WARNING, "guest failed to add port {0} (PORT_READY 0)", str(id));
                listener.portFailed(id, "guest answered PORT_READY 0");
            }
            return;
        }
        if (before == PortState.READY) {
            stats.duplicateReady.increment();
        }
        p.state = PortState.READY;
        // Announce from scratch: the guest may have lost what it was told before.
        p.openSent = false;
        p.sentCols = 0;
        p.sentRows = 0;
        int bits = 0;
        if (p.config.console()) {
            bits |= P_CONSOLE;
        }
        if (p.name != null) {
            bits |= P_NAME;
        }
        setPending(p, bits);
        updateResizePending(p);
        updateOpenPending(p);
        if (implied) {
            listener.deviceReady(true);
        }
        if (before != PortState.READY) {
            LOG.log(System.Logger.Level.DEBUG, "port {0} ready", str(id));
            listener.portReady(id);
        }
    }

    /**
     * A guest that sends PORT_READY without DEVICE_READY was restored from hibernation: it still
     * has the ports it had before the reset and re-reports each. Ports it never heard of get
     * PORT_ADD, ports removed meanwhile get PORT_REMOVE; the others wait for their PORT_READY.
     */
    private void enterRestored(int firstId) {
        guestLog.log(System.Logger.Level.INFO, "PORT_READY for port {0} without DEVICE_READY: treating the guest as "
                + "restored from hibernation", str(firstId));
        deviceReady = true;
        cursor = 0;
        for (Port q : ports) {
            if (q == null) {
                continue;
            }
            if (q.state == PortState.REMOVING) {
                setPending(q, P_REMOVE);
            } else if (q.state == PortState.CONFIGURED && !q.announcedBeforeReset && q.config.id() != firstId) {
                setPending(q, P_ADD);
            }
        }
    }

    private void onGuestOpen(int id, boolean open) {
        Port p = liveGuestPort(id, PORT_OPEN);
        if (p == null) {
            return;
        }
        stats.messagesIn.increment();
        if (p.state != PortState.READY) {
            long n = stats.openBeforeReady.increment();
            guestLog.log(System.Logger.Level.INFO, "guest PORT_OPEN {0} for port {1} in state {2}",
                        open ? "1" : "0", str(id), p.state);
        }
        if (p.guestOpen == open) {
            return;
        }
        p.guestOpen = open;
        if (open) {
            listener.guestOpened(id);
        } else {
            listener.guestClosed(id);
        }
    }

    // ------------------------------------------------------------------ host and device input

    /** The host endpoint of the port connected. Returns false if there is no such port. */
    public boolean hostConnected(int id) {
        return setHost(id, true);
    }

    /** The host endpoint of the port went away. Returns false if there is no such port. */
    public boolean hostDisconnected(int id) {
        return setHost(id, false);
    }

    private boolean setHost(int id, boolean connected) {
        Port p = port(id);
        if (p != null && p.state == PortState.REMOVING && p.reAdd != null) {
            p.reAddHostConnected = connected; // the re-added port takes it once PORT_REMOVE is out
            return true;
        }
        if (p == null || p.state == PortState.REMOVING) {
            return false;
        }
        p.hostConnected = connected;
        updateOpenPending(p);
        return true;
    }

    /**
     * New terminal size for a port. Remembered for every port; a RESIZE is queued for a ready
     * console port when F_SIZE was negotiated and both values are non-zero.
     *
     * @return false if there is no such port or a value is outside 0..65535
     */
    public boolean resize(int id, int cols, int rows) {
        Port p = port(id);
        if (p == null || p.state == PortState.REMOVING || cols < 0 || cols > 0xFFFF || rows < 0 || rows > 0xFFFF) {
            return false;
        }
        p.cols = cols;
        p.rows = rows;
        updateResizePending(p);
        return true;
    }

    /**
     * Whether VIRTIO_CONSOLE_F_MULTIPORT was acked (assumed until the features say otherwise).
     * Without it there is no control protocol and port 0 is always open to host input.
     */
    public void setMultiportNegotiated(boolean negotiated) {
        multiport = negotiated;
    }

    /** Whether VIRTIO_CONSOLE_F_SIZE was acked; RESIZE is only sent when it was. */
    public void setSizeNegotiated(boolean negotiated) {
        sizeNegotiated = negotiated;
        for (Port p : ports) {
            if (p != null && p.state != PortState.REMOVING) {
                updateResizePending(p);
            }
        }
    }

    /**
     * The guest driver or the device was reset. All guest-side state is forgotten: no message
     * stays queued, ports go back to {@link PortState#CONFIGURED} and nothing is announced until
     * the next DEVICE_READY (or a restored guest's PORT_READY). Ports, host connections and sizes
     * are kept. A port being removed stays a tombstone: a fresh DEVICE_READY drops it, a restored
     * guest gets its PORT_REMOVE. Ports the guest had open are reported closed. Size negotiation is not changed:
     * call {@link #setSizeNegotiated} when features are acked again.
     */
    public void deviceReset() {
        stats.resets.increment();
        deviceReady = false;
        cursor = 0;
        pendingPorts.clear();
        List<Integer> closed = new ArrayList<>();
        for (int id = 0; id < maxPorts; id++) {
            Port p = ports[id];
            if (p == null) {
                continue;
            }
            if (p.guestOpen) {
                closed.add(id);
            }
            if (p.state == PortState.REMOVING) {
                // Keep a tombstone: a restored guest still has the port and must get PORT_REMOVE.
                p.pending = 0;
                p.announcedBeforeReset = true;
                continue;
            }
            p.announcedBeforeReset |= p.state.announced();
            p.state = PortState.CONFIGURED;
            p.pending = 0;
            p.guestOpen = false;
            p.openSent = false;
            p.sentCols = 0;
            p.sentRows = 0;
        }
        for (int id : closed) {
            listener.guestClosed(id);
        }
    }

    // ------------------------------------------------------------------ output

    /** True when at least one control message waits for a guest buffer. */
    public boolean hasOutgoing() {
        return !pendingPorts.isEmpty();
    }

    /** Length of the message {@link #pollOutgoing} would return next, or 0 when none waits. */
    public int peekOutgoingLength() {
        int id = nextPendingPort();
        if (id < 0) {
            return 0;
        }
        Port p = ports[id];
        return lengthOf(p, Integer.lowestOneBit(p.pending));
    }

    /** Number of messages currently waiting (at most {@link #MAX_PENDING_PER_PORT} per port). */
    public int pendingMessageCount() {
        int n = 0;
        for (int id = pendingPorts.nextSetBit(0); id >= 0; id = pendingPorts.nextSetBit(id + 1)) {
            n += Integer.bitCount(ports[id].pending);
        }
        return n;
    }

    /**
     * Encodes the next control message into {@code dst[0..]} and marks it sent.
     *
     * @param dst at least {@link ControlMessage#MAX_MESSAGE_SIZE} bytes
     * @return the encoded length, or 0 when nothing waits
     */
    public int pollOutgoing(byte[] dst) {
        if (dst == null || dst.length < MAX_MESSAGE_SIZE) {
            throw new IllegalArgumentException("dst must hold at least " + MAX_MESSAGE_SIZE + " bytes");
        }
        int id = nextPendingPort();
        if (id < 0) {
            return 0;
        }
        Port p = ports[id];
        int bit = Integer.lowestOneBit(p.pending);
        clearPending(p, bit);
        cursor = id + 1 == maxPorts ? 0 : id + 1;
        stats.messagesOut.increment();
        switch (bit) {
            case P_REMOVE -> {
                ControlMessage.encodeHeader(dst, 0, id, PORT_REMOVE, 1);
                ports[id] = null;
                if (p.reAdd != null) {
                    install(p.reAdd).hostConnected = p.reAddHostConnected;
                }
                listener.portRemoved(id);
                return HEADER_SIZE;
            }
            case P_ADD -> {
                p.state = PortState.ADDED;
                return ControlMessage.encodeHeader(dst, 0, id, PORT_ADD, 1);
            }
            case P_CONSOLE -> {
                return ControlMessage.encodeHeader(dst, 0, id, CONSOLE_PORT, 1);
            }
            case P_NAME -> {
                return ControlMessage.encodeName(dst, 0, id, p.name);
            }
            case P_RESIZE -> {
                p.sentCols = p.cols;
                p.sentRows = p.rows;
                return ControlMessage.encodeResize(dst, 0, id, p.cols, p.rows, p.config.resizeOrder());
            }
            case P_OPEN -> {
                p.openSent = p.hostConnected;
                return ControlMessage.encodeHeader(dst, 0, id, PORT_OPEN, p.hostConnected ? 1 : 0);
            }
            default -> throw new AssertionError("pending bit " + bit);
        }
    }

    private int nextPendingPort() {
        int id = pendingPorts.nextSetBit(cursor);
        return id >= 0 ? id : pendingPorts.nextSetBit(0);
    }

    private int lengthOf(Port p, int bit) {
        return switch (bit) {
            case P_NAME -> HEADER_SIZE + p.name.length;
            case P_RESIZE -> HEADER_SIZE + RESIZE_PAYLOAD_SIZE;
            default -> HEADER_SIZE;
        };
    }

    // ------------------------------------------------------------------ pending-set bookkeeping

    private void updateOpenPending(Port p) {
        if (p.state == PortState.READY && p.hostConnected != p.openSent) {
            setPending(p, P_OPEN);
        } else {
            clearPending(p, P_OPEN);
        }
    }

    private void updateResizePending(Port p) {
        boolean send = p.state == PortState.READY && p.config.console() && sizeNegotiated
                && p.cols > 0 && p.rows > 0 && (p.cols != p.sentCols || p.rows != p.sentRows);
        if (send) {
            setPending(p, P_RESIZE);
        } else {
            clearPending(p, P_RESIZE);
        }
    }

    private void setPending(Port p, int bits) {
        if (bits == 0) {
            return;
        }
        p.pending |= bits;
        pendingPorts.set(p.config.id());
    }

    private void clearPending(Port p, int bits) {
        p.pending &= ~bits;
        if (p.pending == 0) {
            pendingPorts.clear(p.config.id());
        }
    }

    // ------------------------------------------------------------------ queries

    private Port port(int id) {
        return id >= 0 && id < maxPorts ? ports[id] : null;
    }

    /** The port's state, or null if there is no port with this id. */
    public PortState portState(int id) {
        Port p = port(id);
        return p == null ? null : p.state;
    }

    /**
     * Everything the device keeps about one port's state, in one value: its life cycle, whether
     * the guest has it open, whether a host peer is connected. Null if there is no such port.
     */
    public PortView view(int id) {
        Port p = port(id);
        return p == null ? null : new PortView(p.state, p.guestOpen, p.hostConnected);
    }

    /** The port's configuration, or null if there is no port with this id. */
    public PortConfig portConfig(int id) {
        Port p = port(id);
        return p == null ? null : p.config;
    }

    /**
     * True when the guest has the port open (and data may be sent to it). Without MULTIPORT the
     * only port is port 0, a plain console with no control queue: nothing ever opens it, the
     * guest reads it whenever it has buffers there, so it counts as open.
     */
    public boolean isGuestOpen(int id) {
        Port p = port(id);
        return p != null && (p.guestOpen || (!multiport && id == 0));
    }

    /** True when the host endpoint of the port is connected. */
    public boolean isHostConnected(int id) {
        Port p = port(id);
        return p != null && p.hostConnected;
    }

    /** True between DEVICE_READY 1 (or a restored guest's PORT_READY) and the next reset. */
    public boolean isDeviceReady() {
        return deviceReady;
    }

    /** Whether RESIZE may be sent (F_SIZE acked). */
    public boolean isSizeNegotiated() {
        return sizeNegotiated;
    }

    /** Ids of all ports, in ascending order. */
    public int[] portIds() {
        int n = 0;
        for (Port p : ports) {
            if (p != null) {
                n++;
            }
        }
        int[] ids = new int[n];
        int i = 0;
        for (int id = 0; id < maxPorts; id++) {
            if (ports[id] != null) {
                ids[i++] = id;
            }
        }
        return ids;
    }

    public int maxPorts() {
        return maxPorts;
    }

    public ControlStats stats() {
        return stats;
    }

    /** Numbers as plain digits in log lines (MessageFormat would group them: 1,024). */
    private static String str(long v) {
        return Long.toString(v);
    }

}
