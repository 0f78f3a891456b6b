package io.vportd.console.device;

import io.vportd.console.control.ControlListener;
import io.vportd.console.control.ControlMachine;
import io.vportd.console.control.PortConfig;
import io.vportd.console.endpoint.Endpoint;
import io.vportd.console.endpoint.EndpointHost;
import io.vportd.sys.Epoll;
import io.vportd.sys.Io;
import io.vportd.sys.Terminal;
import io.vportd.telemetry.LogLimiter;
import io.vportd.vring.Chain;
import io.vportd.vring.SplitQueue;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * The port table and everything that changes it: ports added and removed on the host side (with
 * the removal drain), the guest's and the host peer's opens and closes, snapshots for listings,
 * port events for the management API, endpoint ticks and terminal sizes. Refusals are
 * {@link PortRequestException}s. Confined to the data-plane thread.
 *
 * <p>Size: somewhat over 500 lines: add, remove (with its transmit drain), the endpoint life
 * cycle, events and listings share the port table and its invariants; the hot paths are in
 * {@link PortPump}, the rings in {@link QueueTable}.
 */
final class PortManagement implements ControlListener {

    private static final System.Logger LOG = System.getLogger("vportd.device");
    /** Lines the guest can cause; port open/close has a larger burst so a boot with many ports stays visible. */
    private final LogLimiter guestLog = new LogLimiter(LOG);
    private final LogLimiter portLog = new LogLimiter(LOG, 128, LogLimiter.DEFAULT_WINDOW_NANOS);

    static final int TICK_MS = 100;
    private static final int CONSOLE_BACKLOG = 64 * 1024;
    private static final long SIZE_CHECK_NANOS = 500_000_000L;

    private final QueueMap map;
    private final PortRuntime[] ports;
    private final DirtySet work;
    private final DeviceCounters deviceCounters;
    private final Function<PortConfig, Endpoint> endpointFactory;
    /** Configuration of ports removed on the host side whose PORT_REMOVE has not gone out yet. */
    private final PortConfig[] removing;
    private volatile PortEventListener eventListener = PortEventListener.NONE;
    private ControlMachine control;
    private QueueTable queues;
    private PortPump pump;
    private ControlQueues controlQueues;
    private EndpointHost host;
    private boolean anyTicking;
    private long lastTick;
    private long nextSizeCheck;

    PortManagement(QueueMap map, PortRuntime[] ports, DirtySet work, DeviceCounters deviceCounters,
                   Function<PortConfig, Endpoint> endpointFactory) {
        this.map = map;
        this.ports = ports;
        this.work = work;
        this.deviceCounters = deviceCounters;
        this.endpointFactory = endpointFactory;
        this.removing = new PortConfig[ports.length];
    }

    void bind(ControlMachine control, QueueTable queues, PortPump pump, ControlQueues controlQueues, EndpointHost host) {
        this.control = control;
        this.queues = queues;
        this.pump = pump;
        this.controlQueues = controlQueues;
        this.host = host;
    }

    void setEventListener(PortEventListener listener) {
        this.eventListener = listener == null ? PortEventListener.NONE : listener;
    }

    boolean anyTicking() {
        return anyTicking;
    }

    private io.vportd.telemetry.MetricRegistry registry;

    /** Where endpoints' own counters are registered (per port) while their port exists. */
    void exportEndpointCounters(io.vportd.telemetry.MetricRegistry registry) {
        this.registry = registry;
    }

    private void registerEndpointCounters(PortRuntime p) {
        io.vportd.telemetry.MetricSet set = p.endpoint.metrics();
        if (registry != null && set != null) {
            p.endpointMetrics = registry.register(set, "port", Integer.toString(p.config.id()),
                    "name", p.config.name() == null ? "" : p.config.name());
        }
    }

    private void unregisterEndpointCounters(PortRuntime p) {
        if (registry != null && p.endpointMetrics != null) {
            registry.unregister(p.endpointMetrics);
            p.endpointMetrics = null;
        }
    }

    /** A port configured at start-up (before the data-plane thread runs). */
    void install(PortConfig c) throws IOException {
        Endpoint e = endpointFactory.apply(c);
        try {
            e.open();
        } catch (IOException | RuntimeException ex) {
            e.close();
            throw ex;
        }
        PortRuntime p = new PortRuntime(c, e, CONSOLE_BACKLOG);
        p.added = true; // start-up ports have no port-added event
        ports[c.id()] = p;
        control.addPort(c);
        e.start(host, c.id());
        registerEndpointCounters(p);
    }

    // ---------------------------------------------------------------- host peer

    /** A host peer arrived on this port (called by its endpoint). */
    void hostConnected(int port) {
        PortRuntime p = ports[port];
        p.hostReadable = true;
        p.hostWritable = true;
        work.mark(port);
        control.hostConnected(port);
        if (p.added) {
            emit(PortEvent.HOST_CONNECTED, p, null); // otherwise it follows the port-added event
        }
    }

    /** The host peer went away (end of file or an error): the endpoint drops it, the guest is told. */
    void hostDisconnected(PortRuntime p) {
        Endpoint e = p.endpoint;
        e.hostDisconnected();
        p.hostReadable = false;
        if (!e.connected()) {
            p.hostWritable = false;
            control.hostDisconnected(p.config.id());
            emit(PortEvent.HOST_DISCONNECTED, p, null);
        }
    }

    /** Readiness on a port's host connection (edge-triggered). */
    void connectionReady(int port, int ev) {
        PortRuntime p = port >= 0 && port < ports.length ? ports[port] : null;
        if (p == null) {
            return;
        }
        if ((ev & (Epoll.EPOLLHUP | Epoll.EPOLLRDHUP | Epoll.EPOLLERR)) != 0 && !control.isGuestOpen(port)
                && p.endpoint.connected()) {
            // The peer left while the guest has the port closed: nothing would read its end of
            // file, so drop it now and tell the guest, or the next client is refused meanwhile.
            hostDisconnected(p);
            return;
        }
        if ((ev & (Epoll.EPOLLIN | Epoll.EPOLLHUP | Epoll.EPOLLRDHUP | Epoll.EPOLLERR)) != 0) {
            p.hostReadable = true;
        }
        if ((ev & (Epoll.EPOLLOUT | Epoll.EPOLLHUP | Epoll.EPOLLERR)) != 0) {
            p.hostWritable = true;
        }
        work.mark(port);
    }

    void listenReady(int port, int ev) {
        PortRuntime p = port >= 0 && port < ports.length ? ports[port] : null;
        if (p != null) {
            p.endpoint.onListenReady(ev);
        }
    }

    // ---------------------------------------------------------------- ControlListener

    @Override
    public void guestOpened(int id) {
        PortRuntime p = ports[id];
        if (p != null) {
            work.mark(id);
            portLog.log(Level.INFO, "{0}: guest opened the port", p.label);
            emit(PortEvent.GUEST_OPEN, p, null);
        }
    }

    @Override
    public void guestClosed(int id) {
        PortRuntime p = ports[id];
        if (p != null) {
            portLog.log(Level.INFO, "{0}: guest closed the port", p.label);
            emit(PortEvent.GUEST_CLOSED, p, null);
        }
    }

    @Override
    public void portReady(int id) {
        PortRuntime p = ports[id];
        LOG.log(Level.DEBUG, "{0}: guest reports the port ready", p == null ? "port " + id : p.label);
        if (p != null) {
            emit(PortEvent.PORT_READY, p, null);
        }
    }

    @Override
    public void portFailed(int id, String why) {
        PortRuntime p = ports[id];
        guestLog.log(Level.WARNING, "{0}: guest failed to set up the port: {1}", p == null ? "port " + id : p.label, why);
        if (p != null) {
            emit(PortEvent.PORT_FAILED, p, why);
        }
    }

    @Override
    public void deviceReady(boolean ok) {
        controlQueues.deviceReadySeen(); // the control machine logs the event itself
    }

    @Override
    public void portRemoved(int id) {
        PortConfig c = id >= 0 && id < removing.length ? removing[id] : null;
        if (c != null) {
            removing[id] = null;
            LOG.log(Level.INFO, "{0}: the guest was told the port is gone", PortRuntime.labelOf(c));
            emit(PortEvent.PORT_REMOVED, c, null);
        }
    }

    // ---------------------------------------------------------------- add, remove, list

    /**
     * The endpoint for a port about to be added, made and opened on the calling thread (a
     * management client's): whatever may block (names, binding, files, pty links) happens there,
     * never on the data-plane thread. Refusals the port table can give are checked first by the
     * caller ({@link #check}), so a refused port opens nothing.
     */
    Endpoint openEndpoint(PortConfig c) {
        Endpoint e;
        try {
            e = endpointFactory.apply(c);
        } catch (RuntimeException ex) {
            throw new PortRequestException(PortRequestException.Reason.ENDPOINT_FAILED, ex.getMessage(), ex);
        }
        try {
            e.open();
        } catch (IOException | RuntimeException ex) {
            try {
                e.close();
            } catch (RuntimeException closeFailure) {
                ex.addSuppressed(closeFailure);
            }
            throw new PortRequestException(PortRequestException.Reason.ENDPOINT_FAILED,
                    PortRuntime.labelOf(c) + ": cannot start endpoint " + c.endpoint().toSpec() + ": " + ex.getMessage(), ex);
        }
        return e;
    }

    /** Adds a port whose endpoint is already open; the endpoint is this table's from now on (closed on refusal). */
    PortStatus add(PortConfig c, Endpoint e) {
        try {
            check(c);
        } catch (PortRequestException refused) {
            e.close();
            throw refused;
        }
        return addChecked(c, e);
    }

    /** The refusals the port table gives by itself: id range, id and name taken. */
    void check(PortConfig c) {
        int id = c.id();
        if (id >= ports.length) {
            throw new PortRequestException(PortRequestException.Reason.ID_OUT_OF_RANGE,
                    "port id " + id + " is not below max ports " + ports.length);
        }
        if (ports[id] != null) {
            throw new PortRequestException(PortRequestException.Reason.ID_TAKEN,
                    "port id " + id + " is already used by " + ports[id].label);
        }
        if (c.name() != null) {
            for (PortRuntime other : ports) {
                if (other != null && c.name().equals(other.config.name())) {
                    throw new PortRequestException(PortRequestException.Reason.NAME_TAKEN,
                            "port name '" + c.name() + "' is already used by port " + other.config.id());
                }
            }
        }
    }

    private PortStatus addChecked(PortConfig c, Endpoint e) {
        int id = c.id();
        if (removing[id] != null && c.console() != removing[id].console()) {
            // The guest keeps its hvc set-up per id until it has seen PORT_REMOVE; keep it simple.
            LOG.log(Level.DEBUG, "port {0} re-added with a different console flag while its removal is pending", id);
        }
        PortRuntime p = new PortRuntime(c, e, CONSOLE_BACKLOG);
        try {
            control.addPort(c); // first: the endpoint may report its host connected while it starts
        } catch (IllegalArgumentException ex) {
            e.close();
            if (p.consoleBacklog != null) {
                p.consoleBacklog.close();
            }
            throw new PortRequestException(ex.getMessage().contains("name") ? PortRequestException.Reason.NAME_TAKEN
                    : PortRequestException.Reason.ID_TAKEN, ex.getMessage(), ex);
        }
        ports[id] = p;
        try {
            e.start(host, id);
        } catch (IOException | RuntimeException ex) {
            ports[id] = null;
            control.removePort(id); // never announced: it simply goes (or its queued re-add is cancelled)
            try {
                e.close();
            } catch (RuntimeException closeFailure) {
                ex.addSuppressed(closeFailure);
            }
            if (p.consoleBacklog != null) {
                p.consoleBacklog.close();
            }
            throw new PortRequestException(PortRequestException.Reason.ENDPOINT_FAILED,
                    p.label + ": cannot start endpoint " + c.endpoint().toSpec() + ": " + ex.getMessage(), ex);
        }
        queues.attachRunning(p);
        registerEndpointCounters(p);
        work.mark(id);
        anyTicking |= e.wantsTicks();
        LOG.log(Level.INFO, "{0}: added with endpoint {1}", p.label, e.describe());
        emit(PortEvent.PORT_ADDED, p, e.describe());
        p.added = true;
        if (control.isHostConnected(id)) {
            emit(PortEvent.HOST_CONNECTED, p, null);
        }
        return statusOf(p);
    }

    RemovalReport remove(int id) {
        PortRuntime p = id >= 0 && id < ports.length ? ports[id] : null;
        if (p == null) {
            throw new PortRequestException(PortRequestException.Reason.NO_SUCH_PORT, "there is no port " + id);
        }
        boolean wasOpen = control.isGuestOpen(id);
        long[] moved = drainTransmit(p); // delivered, undelivered bytes, undelivered chains
        if (p.receiveHeld) {
            // An empty guest receive buffer stays the guest's: give it back to the ring.
            try {
                // The held buffer is the last one popped: a scattered readv hands the others back.
                p.receive.giveBack(1, p.receiveChain.totalLength());
            } catch (IllegalStateException notDirectlyAfterPop) {
                p.receive.pushUsed(p.receiveChain.head(), 0);
                queues.completed(map.receiveQueue(id));
            }
            p.receiveHeld = false;
        }
        removing[id] = p.config;
        Endpoint e = p.endpoint;
        boolean wasConnected = control.isHostConnected(id) && !e.discardsOutput();
        try {
            e.close();
        } catch (RuntimeException ex) {
            LOG.log(Level.WARNING, "{0}: closing {1} failed: {2}", p.label, e.describe(), ex.toString());
        }
        if (wasConnected) {
            emit(PortEvent.HOST_DISCONNECTED, p, "port removed");
        }
        control.removePort(id); // reports guest-closed, queues PORT_REMOVE (portRemoved follows)
        ports[id] = null;
        unregisterEndpointCounters(p);
        work.clear(id);
        if (p.receiveChain != null) {
            p.receiveChain.close();
        }
        if (p.transmitChain != null) {
            p.transmitChain.close();
        }
        if (p.consoleBacklog != null) {
            p.consoleBacklog.close();
        }
        if (moved[1] > 0) {
            deviceCounters.removedUndeliveredBytes.add(moved[1]);
            LOG.log(Level.WARNING, "{0}: removed with {1} bytes of guest output in {2} buffers the host did not take",
                    p.label, Long.toString(moved[1]), Long.toString(moved[2]));
        }
        LOG.log(Level.INFO, "{0}: removed on the host side ({1} bytes delivered during removal)", p.label, Long.toString(moved[0]));
        return new RemovalReport(id, p.config.name(), moved[0], moved[1], moved[2], wasOpen);
    }

    /**
     * Empties the port's transmit queue before removal (the guest would otherwise keep buffers the
     * device never completes): writes what the host endpoint takes without blocking, completes
     * the rest unsent and counts it.
     */
    private long[] drainTransmit(PortRuntime p) {
        long delivered = 0;
        long undeliveredBytes = 0;
        long undeliveredChains = 0;
        Endpoint e = p.endpoint;
        if (p.isConsole() && p.consoleBacklog != null) {
            pump.flushConsoleBacklog(p);
            undeliveredBytes += p.consoleBacklog.size();
        }
        SplitQueue q = p.transmit;
        if (q == null) {
            return new long[] {delivered, undeliveredBytes, undeliveredChains};
        }
        int txq = map.transmitQueue(p.config.id());
        boolean discard = e.discardsOutput();
        boolean canWrite = e.connected() && e.outputFd() >= 0 && (p.isConsole() ? p.consoleBacklog.isEmpty() : true);
        Chain c = p.transmitChain;
        for (int budget = q.size() + 1; budget > 0; budget--) {
            int held = PortPump.holdTransmit(p, q, queues, txq, false);
            if (held == 0) {
                break;
            }
            if (held < 0) {
                continue;
            }
            if (discard) {
                p.counters.add(PortCounters.DISCARDED_BYTES, c.remaining());
            } else {
                while (canWrite && c.remaining() > 0) {
                    long n = Io.writev(e.outputFd(), c.iovAddress(), Math.min(c.iovCount(), PortPump.IOV_MAX));
                    if (n <= 0) {
                        canWrite = false;
                        break;
                    }
                    delivered += n;
                    p.counters.add(PortCounters.BYTES_TO_HOST, n);
                    c.advance(n);
                }
                if (c.remaining() > 0) {
                    undeliveredBytes += c.remaining();
                    undeliveredChains++;
                }
            }
            q.pushUsed(c.head(), 0);
            p.transmitHeld = false;
            p.counters.add(PortCounters.CHAINS_TO_HOST, 1);
            queues.completed(txq);
        }
        return new long[] {delivered, undeliveredBytes, undeliveredChains};
    }

    void resize(int id, int cols, int rows) {
        PortRuntime p = id >= 0 && id < ports.length ? ports[id] : null;
        if (p == null) {
            throw new PortRequestException(PortRequestException.Reason.NO_SUCH_PORT, "there is no port " + id);
        }
        if (!p.isConsole()) {
            throw new PortRequestException(PortRequestException.Reason.NOT_CONSOLE,
                    p.label + " is not a console port; only consoles have a size");
        }
        if (cols < 1 || cols > 0xFFFF || rows < 1 || rows > 0xFFFF) {
            throw new PortRequestException(PortRequestException.Reason.INVALID,
                    "cols and rows must be 1..65535, got " + cols + "x" + rows);
        }
        control.resize(id, cols, rows);
    }

    PortStatus statusOf(PortRuntime p) {
        int id = p.config.id();
        return new PortStatus(id, p.config.name(), p.config.console(), p.endpoint.describe(),
                control.isGuestOpen(id), control.isHostConnected(id), p.transmitHeld, p.counters);
    }

    List<PortStatus> snapshot() {
        List<PortStatus> out = new ArrayList<>();
        for (PortRuntime p : ports) {
            if (p != null) {
                out.add(statusOf(p));
            }
        }
        return out;
    }

    private void emit(String type, PortRuntime p, String detail) {
        emit(type, p.config, detail);
    }

    private void emit(String type, PortConfig c, String detail) {
        try {
            eventListener.onPortEvent(new PortEvent(type, c.id(), c.name(), detail));
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "port event listener failed on {0}: {1}", type, e.toString());
        }
    }

    // ---------------------------------------------------------------- device-wide events

    /** Device reset: partial chains carried across ring restarts belong to rings that are gone. */
    void forgetCarried() {
        for (PortRuntime p : ports) {
            if (p != null) {
                p.forgetCarried();
            }
        }
    }

    /** A character written to the config space: to the first console port. */
    void emergencyWrite(int character) {
        for (PortRuntime p : ports) {
            if (p != null && p.isConsole()) {
                p.keepConsoleOutput(new byte[] {(byte) character}, 0, 1);
                work.mark(p.config.id());
                deviceCounters.emergencyWrites.increment();
                pump.flushConsoleBacklog(p);
                return;
            }
        }
        deviceCounters.emergencyWritesDropped.increment();
    }

    /** Lets endpoints that wait for something (a reconnect back-off) act; at most every TICK_MS. */
    void tickEndpoints() {
        long now = System.nanoTime();
        if (now - lastTick < TICK_MS * 1_000_000L) {
            return;
        }
        lastTick = now;
        boolean ticking = false;
        for (PortRuntime p : ports) {
            if (p != null && p.endpoint.wantsTicks()) {
                ticking = true;
                p.endpoint.tick(now);
            }
        }
        anyTicking = ticking;
    }

    /** Console ports on a terminal follow its window size, the way a SIGWINCH handler would. */
    void followTerminalSizes() {
        long now = System.nanoTime();
        if (now - nextSizeCheck < 0) {
            return;
        }
        nextSizeCheck = now + SIZE_CHECK_NANOS;
        for (PortRuntime p : ports) {
            if (p == null || !p.isConsole()) {
                continue;
            }
            int fd = p.endpoint.terminalFd();
            if (fd < 0) {
                continue;
            }
            int size = Terminal.windowSize(fd);
            if (size > 0 && size != p.terminalSize) {
                p.terminalSize = size;
                control.resize(p.config.id(), Terminal.windowCols(size), Terminal.windowRows(size));
                LOG.log(Level.DEBUG, "{0}: terminal is now {1}x{2}", p.label, Terminal.windowCols(size), Terminal.windowRows(size));
            }
        }
    }

    /** Closes every endpoint (shutdown), collecting errors. */
    void closeAll(List<Exception> errors) {
        for (PortRuntime p : ports) {
            if (p != null) {
                try {
                    p.endpoint.close();
                    if (p.consoleBacklog != null) {
                        p.consoleBacklog.close();
                    }
                } catch (RuntimeException e) {
                    errors.add(e);
                }
            }
        }
    }
}
