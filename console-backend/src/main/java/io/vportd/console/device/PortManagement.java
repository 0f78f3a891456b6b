package io.vportd.console.device;

import io.vportd.console.control.ControlListener;
import io.vportd.console.control.ControlMachine;
import io.vportd.console.control.PortConfig;
import io.vportd.console.endpoint.Endpoint;
import io.vportd.console.endpoint.EndpointHost;
import io.vportd.console.portlog.LogFollower;
import io.vportd.console.portlog.LogWriter;
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
 * <p>Size: over 500 lines: add, remove (with its transmit drain), the endpoint and port-log life
 * cycle, events and listings share the port table and its invariants; the hot paths are in
 * {@link PortPump}, the rings in {@link QueueTable}, the log tap in {@link PortTap}.
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

    private final PortLogContext logContext;

    PortManagement(QueueMap map, PortRuntime[] ports, DirtySet work, DeviceCounters deviceCounters,
                   Function<PortConfig, Endpoint> endpointFactory, PortLogContext logContext) {
        this.logContext = logContext;
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
        String name = p.config.name() == null ? "" : p.config.name();
        if (registry != null && set != null) {
            p.endpointMetrics = registry.register(set, "port", Integer.toString(p.config.id()), "name", name);
        }
        if (registry != null && p.tap != null && p.tap.writer != null) {
            p.logMetrics = registry.register(p.tap.writer.metrics(), "port", Integer.toString(p.config.id()), "name", name);
        }
    }

    private void unregisterEndpointCounters(PortRuntime p) {
        if (registry != null && p.endpointMetrics != null) {
            registry.unregister(p.endpointMetrics);
            p.endpointMetrics = null;
        }
        if (registry != null && p.logMetrics != null) {
            registry.unregister(p.logMetrics);
            p.logMetrics = null;
        }
    }

    /**
     * Opens the port's log (file or journal socket) on the calling thread, the one adding the port;
     * null when the port logs nothing. A refusal names the key and the reason.
     */
    LogWriter openLog(PortConfig c) {
        try {
            return PortTap.openWriter(c, logContext.device(), logContext.journalSocket());
        } catch (IOException | RuntimeException ex) {
            throw new PortRequestException(PortRequestException.Reason.ENDPOINT_FAILED,
                    PortRuntime.labelOf(c) + ": cannot open its log: " + ex.getMessage(), ex);
        }
    }

    /**
     * Starts a follower of port {@code id} (see {@link DataPlane#followLog}), or none when
     * {@code f} is null; returns the replay ring's copy.
     */
    byte[] follow(int id, LogFollower f) {
        PortRuntime p = id >= 0 && id < ports.length ? ports[id] : null;
        if (p == null) {
            throw new PortRequestException(PortRequestException.Reason.NO_SUCH_PORT, "there is no port " + id);
        }
        if (f == null) {
            return p.tap == null ? new byte[0] : p.tap.snapshot();
        }
        if (p.tap == null) {
            p.tap = new PortTap(p.counters, null, 0); // the first follower of a port without log or replay
        }
        if (!p.tap.follow(f)) {
            throw new PortRequestException(PortRequestException.Reason.INVALID,
                    p.label + " already has " + PortTap.MAX_FOLLOWERS + " log followers");
        }
        return p.tap.snapshot();
    }

    /** A port configured at start-up (before the data-plane thread runs). */
    void install(PortConfig c) throws IOException {
        LogWriter log = PortTap.openWriter(c, logContext.device(), logContext.journalSocket());
        Endpoint e;
        try {
            e = endpointFactory.apply(c);
        } catch (RuntimeException ex) {
            if (log != null) {
                log.close();
            }
            throw ex;
        }
        try {
            e.open();
        } catch (IOException | RuntimeException ex) {
            e.close();
            if (log != null) {
                log.close();
            }
            throw ex;
        }
        PortRuntime p = new PortRuntime(c, e, CONSOLE_BACKLOG, log);
        if (p.tap != null) {
            p.tap.start();
        }
        p.added = true; // start-up ports have no port-added event
        ports[c.id()] = p;
        control.addPort(c);
        e.start(host, c.id());
        registerEndpointCounters(p);
    }

    // ---------------------------------------------------------------- live hand-over

    /**
     * Every port's runtime and endpoint descriptors for a live hand-over (the data plane is frozen
     * and its rings are stopped). When an endpoint cannot be handed over, those already asked are
     * told the hand-over was abandoned and the reason is thrown.
     */
    List<DeviceSnapshot.Port> handoverPorts() throws IOException {
        List<DeviceSnapshot.Port> out = new ArrayList<>();
        List<PortRuntime> asked = new ArrayList<>();
        try {
            for (PortRuntime p : ports) {
                if (p == null) {
                    continue;
                }
                asked.add(p);
                io.vportd.console.endpoint.Handed h = p.endpoint.handover();
                long[] carried = p.carried();
                out.add(new DeviceSnapshot.Port(p.config, p.added, (int) carried[0], (int) carried[1], carried[2],
                        p.consoleBacklog == null ? new byte[0] : p.consoleBacklog.copyAll(), p.terminalSize, h,
                        p.counters.values(), p.tap == null || p.tap.replay == null ? new byte[0] : p.tap.replay.snapshot()));
            }
        } catch (IOException | RuntimeException e) {
            handoverAbandoned(asked);
            throw e;
        }
        return out;
    }

    /**
     * The ports as a crash-recovery checkpoint keeps them, on the data-plane thread while it runs:
     * configuration, guest-visible facts and each endpoint's descriptors, duplicated here so that
     * they stay valid while another thread stores them (the caller owns the duplicates). Nothing
     * in flight: a crash loses carried chains, console backlogs and replay rings.
     *
     * @throws NativeException a descriptor could not be duplicated (those taken so far are closed)
     */
    List<DeviceSnapshot.Port> checkpointPorts() throws io.vportd.sys.NativeException {
        List<DeviceSnapshot.Port> out = new ArrayList<>();
        try {
            for (PortRuntime p : ports) {
                if (p == null) {
                    continue;
                }
                io.vportd.console.endpoint.Handed h;
                try {
                    h = p.endpoint.checkpoint();
                } catch (IOException e) {
                    h = io.vportd.console.endpoint.Handed.reopen();
                }
                io.vportd.console.endpoint.Handed copy = new io.vportd.console.endpoint.Handed();
                h.facts().forEach(copy::fact);
                try {
                    for (java.util.Map.Entry<String, Integer> e : h.fds().entrySet()) {
                        copy.fd(e.getKey(), io.vportd.sys.Io.dup(e.getValue()).release());
                    }
                } catch (io.vportd.sys.NativeException | RuntimeException e) {
                    copy.closeRest();
                    throw e;
                }
                out.add(new DeviceSnapshot.Port(p.config, p.added, 0, 0, 0, new byte[0], p.terminalSize, copy,
                        new long[0], new byte[0]));
            }
        } catch (io.vportd.sys.NativeException | RuntimeException e) {
            out.forEach(x -> x.endpoint().closeRest());
            throw e;
        }
        return out;
    }

    /** The hand-over did not happen: endpoints that paused something go on. */
    void handoverAbandoned() {
        handoverAbandoned(java.util.Arrays.asList(ports));
    }

    private static void handoverAbandoned(List<PortRuntime> list) {
        for (PortRuntime p : list) {
            if (p != null) {
                p.endpoint.handoverAbandoned();
            }
        }
    }

    /** Configurations of ports whose PORT_REMOVE has not gone out yet. */
    List<PortConfig> removingConfigs() {
        List<PortConfig> out = new ArrayList<>();
        for (PortConfig c : removing) {
            if (c != null) {
                out.add(c);
            }
        }
        return out;
    }

    /**
     * A port handed over by the previous process (its control state is restored separately):
     * nothing goes to the guest, the endpoint adopts its descriptors and starts watching them.
     */
    void installHandedOver(DeviceSnapshot.Port s, Endpoint e) throws IOException {
        PortConfig c = s.config();
        LogWriter log;
        try {
            log = PortTap.openWriter(c, logContext.device(), logContext.journalSocket());
        } catch (IOException | RuntimeException ex) {
            e.close();
            throw ex;
        }
        PortRuntime p = new PortRuntime(c, e, CONSOLE_BACKLOG, log);
        if (p.tap != null) {
            if (p.tap.replay != null && s.replay().length > 0) {
                p.tap.replay.append(s.replay(), 0, s.replay().length);
            }
            p.tap.start();
        }
        p.added = s.added();
        p.terminalSize = s.terminalSize();
        p.carry(s.carriedHead(), s.carriedAvail(), s.carriedTaken());
        p.counters.carry(s.counters());
        if (p.consoleBacklog != null && s.consoleBacklog().length > 0) {
            p.consoleBacklog.append(s.consoleBacklog(), 0, s.consoleBacklog().length);
        }
        ports[c.id()] = p;
        p.handingOver = true;
        try {
            e.start(host, c.id());
        } catch (IOException | RuntimeException ex) {
            ports[c.id()] = null;
            e.close();
            throw ex;
        } finally {
            p.handingOver = false;
        }
        registerEndpointCounters(p);
        work.mark(c.id());
    }

    /**
     * What a hand-over waits for off the data-plane thread before freezing it: each port's
     * endpoint (its {@link Endpoint#prepareHandover}) and log writer, or null for none.
     */
    record Waitable(String label, Endpoint endpoint, LogWriter log) {
    }

    List<Waitable> handoverWaitables() {
        List<Waitable> out = new ArrayList<>();
        for (PortRuntime p : ports) {
            if (p != null) {
                out.add(new Waitable(p.label, p.endpoint, p.tap == null ? null : p.tap.writer));
            }
        }
        return out;
    }

    /** A port removed on the host side whose PORT_REMOVE the previous process had not sent yet. */
    void restoreRemoving(PortConfig c) {
        removing[c.id()] = c;
    }

    // ---------------------------------------------------------------- host peer

    /** A host peer arrived on this port (called by its endpoint). */
    void hostConnected(int port) {
        PortRuntime p = ports[port];
        p.hostReadable = true;
        p.hostWritable = true;
        p.hostHungUp = false;
        if (!p.handingOver) {
            p.replayToNewClient(); // a client handed over with its port has seen the ring already
        }
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
        if ((ev & (Epoll.EPOLLHUP | Epoll.EPOLLRDHUP | Epoll.EPOLLERR)) != 0) {
            p.hostHungUp = true; // no edge follows the end of file: read until it is seen
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
        return add(c, e, null);
    }

    /** The same with the port's opened log writer (null for none), closed on refusal too. */
    PortStatus add(PortConfig c, Endpoint e, LogWriter log) {
        try {
            check(c);
        } catch (PortRequestException refused) {
            e.close();
            if (log != null) {
                log.close();
            }
            throw refused;
        }
        return addChecked(c, e, log);
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

    private PortStatus addChecked(PortConfig c, Endpoint e, LogWriter log) {
        int id = c.id();
        if (removing[id] != null && c.console() != removing[id].console()) {
            // The guest keeps its hvc set-up per id until it has seen PORT_REMOVE; keep it simple.
            LOG.log(Level.DEBUG, "port {0} re-added with a different console flag while its removal is pending", id);
        }
        PortRuntime p = new PortRuntime(c, e, CONSOLE_BACKLOG, log);
        try {
            control.addPort(c); // first: the endpoint may report its host connected while it starts
        } catch (IllegalArgumentException ex) {
            e.close();
            if (p.consoleBacklog != null) {
                p.consoleBacklog.close();
            }
            if (p.tap != null) {
                p.tap.close();
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
            if (p.tap != null) {
                p.tap.close();
            }
            throw new PortRequestException(PortRequestException.Reason.ENDPOINT_FAILED,
                    p.label + ": cannot start endpoint " + c.endpoint().toSpec() + ": " + ex.getMessage(), ex);
        }
        queues.attachRunning(p);
        if (p.tap != null) {
            p.tap.start();
        }
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
        java.util.List<java.nio.file.Path> files = e.detachFiles(); // deleted by the remover, not here
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
        if (p.tap != null) {
            p.tap.close(); // the writer finishes what it holds, then closes the file
        }
        if (moved[1] > 0) {
            deviceCounters.removedUndeliveredBytes.add(moved[1]);
            LOG.log(Level.WARNING, "{0}: removed with {1} bytes of guest output in {2} buffers the host did not take",
                    p.label, Long.toString(moved[1]), Long.toString(moved[2]));
        }
        LOG.log(Level.INFO, "{0}: removed on the host side ({1} bytes delivered during removal)", p.label, Long.toString(moved[0]));
        return new RemovalReport(id, p.config.name(), moved[0], moved[1], moved[2], wasOpen, files);
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
                if (p.tap != null) {
                    p.tap.fromChain(c, c.transferred(), c.remaining());
                }
            } else {
                while (canWrite && c.remaining() > 0) {
                    long n = Io.writev(e.outputFd(), c.iovAddress(), Math.min(c.iovCount(), PortPump.IOV_MAX));
                    if (n <= 0) {
                        canWrite = false;
                        break;
                    }
                    delivered += n;
                    p.counters.add(PortCounters.BYTES_TO_HOST, n);
                    if (p.tap != null) {
                        p.tap.fromChain(c, c.transferred(), n);
                    }
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
                control.isGuestOpen(id), control.isHostConnected(id), p.transmitHeld, p.counters,
                p.config.log().describe());
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
                byte[] one = {(byte) character};
                if (p.tap != null) {
                    p.tap.bytes(one, 0, 1);
                }
                p.keepConsoleOutput(one, 0, 1);
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
                    if (p.tap != null) {
                        p.tap.close();
                    }
                } catch (RuntimeException e) {
                    errors.add(e);
                }
            }
        }
        // Shutdown runs off the data plane: let each log writer write what it still holds.
        long deadline = System.nanoTime() + LOG_FLUSH_NANOS;
        for (PortRuntime p : ports) {
            if (p != null && p.tap != null && p.tap.writer != null) {
                try {
                    if (!p.tap.writer.awaitClosed(Math.max(1, (deadline - System.nanoTime()) / 1_000_000))) {
                        LOG.log(Level.WARNING, "{0}: its log writer did not finish within the shutdown grace", p.label);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** How long shutdown waits for the log writers in all. */
    private static final long LOG_FLUSH_NANOS = 3_000_000_000L;
}
