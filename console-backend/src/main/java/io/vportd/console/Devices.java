package io.vportd.console;

import io.vportd.console.api.ApiException;
import io.vportd.console.api.ApiProtocol;
import io.vportd.console.api.DataPlanePorts;
import io.vportd.console.api.DeviceDirectory;
import io.vportd.console.api.Metrics;
import io.vportd.console.api.PortManager;
import io.vportd.console.cli.DeviceConfig;
import io.vportd.console.cli.HostPort;
import io.vportd.console.device.ConsoleDevice;
import io.vportd.console.device.PortEvent;
import io.vportd.console.device.PortLogContext;
import io.vportd.telemetry.MetricRegistry;
import io.vportd.telemetry.MetricSet;
import io.vportd.telemetry.SharedCounter;
import io.vportd.vhost.VhostUserServer;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * The devices of one vportd process ({@code --config FILE}). Each device is a {@link ConsoleDevice}
 * whose data plane takes turns on one of a fixed set of event loops, and a {@link VhostUserServer}
 * of its own: what one frontend or guest does ends or stalls that device only. A device whose data
 * plane dies is detached from its loop, closed and logged; the others serve on. The table is
 * guarded by this object's lock, held only to look a device up or change the table, never while a
 * device's data plane is asked anything, so a request for one device never waits on another's
 * data plane. Devices list in the order they started (a file's order). A live hand-over of the
 * whole daemon ({@link io.vportd.console.handover.DevicesHandover}) holds the table still: see
 * {@link #hold}; the taking process fills its table with {@link #takeOver}.
 */
final class Devices implements DeviceDirectory, AutoCloseable, io.vportd.console.handover.DevicesHandover.Daemon {

    private static final System.Logger LOG = System.getLogger("vportd");

    /** One device being served. */
    private record Served(DeviceConfig config, ConsoleDevice device, VhostUserServer server, DataPlanePorts ports,
                          List<Object> claims) {
        /** A device being served by {@code server}; its port table reports a guest while a session runs. */
        static Served of(DeviceConfig config, ConsoleDevice device, VhostUserServer server, List<Object> claims) {
            return new Served(config, device, server, new DataPlanePorts(device.dataPlane(),
                    () -> server.sessionsStarted() > server.sessionsEnded()), claims);
        }
    }

    private final String journalSocket;
    private final Map<String, Served> served = new LinkedHashMap<>(); // guarded by this
    /** Ids of devices being built (their paths are claimed already). Guarded by this. */
    private final java.util.Set<String> starting = new java.util.HashSet<>();
    /** Every path and TCP address the daemon and its devices hold (one set: a device's start checks O(its ports)). Guarded by this. */
    private final io.vportd.console.cli.Claims claims = new io.vportd.console.cli.Claims();
    private volatile BiConsumer<String, PortEvent> events = (d, e) -> { };
    /**
     * A live hand-over holds the table: no device is added or removed meanwhile (set under this
     * object's lock), and no port added, removed or resized (set under the write lock of
     * {@link #portChanges}, which every port change holds for reading while it runs, so none is
     * half done when a hand-over begins, and none starts during one).
     */
    private volatile boolean handingOver;
    private final java.util.concurrent.locks.ReentrantReadWriteLock portChanges =
            new java.util.concurrent.locks.ReentrantReadWriteLock();

    /** The process's own counters: the devices', labelled, come from each device. */
    private final MetricRegistry shared = new MetricRegistry();
    private final MetricSet stats = new MetricSet();
    private final SharedCounter added = stats.shared("vportd_devices_added_total",
            "Devices started (from the configuration file and add-device).");
    private final SharedCounter removed = stats.shared("vportd_devices_removed_total",
            "Devices stopped by remove-device.");
    private final SharedCounter failed = stats.shared("vportd_devices_failed_total",
            "Devices closed because their data plane stopped unexpectedly (the other devices serve on).");

    /** The event loops the devices' data planes run on (a fixed set, devices assigned to the least loaded). */
    private final io.vportd.console.device.EventLoop.Group loops;

    Devices(Path apiSocket, HostPort metricsListen, String journalSocket, int eventLoops) throws IOException {
        this.journalSocket = journalSocket;
        if (apiSocket != null) {
            claims.path(apiSocket, "api-socket");
        }
        if (metricsListen != null) {
            claims.tcp(metricsListen, "metrics-listen");
        }
        this.loops = new io.vportd.console.device.EventLoop.Group(eventLoops, Logging.DEVICE::set);
        stats.gauge("vportd_devices", "Devices this process serves.", () -> {
            synchronized (this) {
                return served.size();
            }
        });
        shared.register(stats);
    }

    /** The process-wide registry (the logger, the management API), exported unlabelled beside the devices'. */
    MetricRegistry shared() {
        return shared;
    }

    /** Where port events go, with the device's id. */
    void onEvents(BiConsumer<String, PortEvent> listener) {
        this.events = listener == null ? (d, e) -> { } : listener;
    }

    /**
     * Starts serving {@code config} beside the devices served now.
     *
     * @throws IllegalArgumentException when it clashes with one of them (id, a path, a TCP address)
     * @throws IOException when its socket cannot be served or an endpoint cannot be set up
     */
    void start(DeviceConfig config) throws IOException {
        launch(config);
    }

    /**
     * {@link #start}, returning what was started. Telling what a device serves asks its data plane
     * (a round trip to its loop), so only the management API's add-device does.
     */
    private Served launch(DeviceConfig config) throws IOException {
        List<Object> held;
        // Checked and reserved under the lock; built outside it (binding sockets, opening files and
        // resolving TCP hosts may take a while, and lookups for other devices must not wait on it).
        synchronized (this) {
            refuseDuringHandover();
            if (served.size() + starting.size() >= io.vportd.console.cli.ConfigFile.MAX_DEVICES) {
                throw new IllegalArgumentException("this process serves " + served.size() + " devices, the most it takes");
            }
            if (served.containsKey(config.id()) || starting.contains(config.id())) {
                throw new IllegalArgumentException("there is a device '" + config.id() + "' already");
            }
            held = claims.claimDevice(config);
            starting.add(config.id());
        }
        Served s;
        try {
            s = build(config, held);
        } catch (IOException | RuntimeException e) {
            synchronized (this) {
                starting.remove(config.id());
                claims.release(held);
            }
            throw e;
        }
        synchronized (this) {
            starting.remove(config.id());
            served.put(config.id(), s);
        }
        added.incrementAndGet();
        LOG.log(Level.INFO, "device {0}: serving {1} port(s) on {2}; max ports {3}, {4} queues", config.id(),
                config.ports().size(), config.socketPath(), config.maxPorts(), s.device().queueCount());
        return s;
    }

    /**
     * Builds and starts one device. Its threads (vhost-user, endpoint pumps) are created here,
     * with the device's id as their log tag; its data plane takes turns on the least loaded loop.
     */
    private Served build(DeviceConfig c, List<Object> held) throws IOException {
        String before = Logging.DEVICE.get();
        Logging.DEVICE.set(c.id());
        try {
            ConsoleDevice device = new ConsoleDevice(c.maxPorts(), c.ports(),
                    new PortLogContext(c.id(), Path.of(journalSocket)), loops.leastLoaded());
            VhostUserServer server;
            try {
                server = new VhostUserServer(c.socketPath(), device,
                        new VhostUserServer.Options(c.allowUnsealedMemory(), VhostUserServer.DEFAULT_HANDSHAKE_TIMEOUT));
            } catch (IOException | RuntimeException e) {
                device.close();
                throw e;
            }
            watch(c.id(), device, server);
            server.start();
            return Served.of(c, device, server, held);
        } finally {
            Logging.DEVICE.set(before);
        }
    }

    @Override
    public DeviceInfo addDevice(DeviceConfig config) {
        try {
            return info(launch(config));
        } catch (IllegalArgumentException e) {
            String why = e.getMessage();
            throw new ApiException(ApiProtocol.BAD_SPEC,
                    why.startsWith("device " + config.id()) ? why : "device " + config.id() + ": " + why);
        } catch (IOException e) {
            throw new ApiException(ApiProtocol.BAD_SPEC, "device " + config.id() + ": cannot serve it: " + e.getMessage());
        }
    }

    @Override
    public void removeDevice(String id) {
        boolean stopped;
        try {
            stopped = stop(id, true);
        } catch (IllegalArgumentException e) {
            throw new ApiException(ApiProtocol.INVALID_REQUEST, "device " + id + ": " + e.getMessage());
        }
        if (!stopped) {
            throw noSuchDevice(id);
        }
        removed.incrementAndGet();
    }

    /** Stops serving device {@code id}; false when there is none. */
    private boolean stop(String id) {
        return stop(id, false);
    }

    /**
     * Stops serving device {@code id}; false when there is none. With {@code notDuringHandover}
     * (a request) it is refused while a live hand-over holds the table; a device whose data plane
     * died is stopped regardless (the hand-over then fails on it and everything resumes).
     */
    private boolean stop(String id, boolean notDuringHandover) {
        Served s;
        synchronized (this) {
            if (notDuringHandover) {
                refuseDuringHandover();
            }
            s = served.remove(id);
            if (s != null) {
                claims.release(s.claims()); // its paths are free again once it is closed below
            }
        }
        if (s == null) {
            return false;
        }
        close(s);
        LOG.log(Level.INFO, "device {0}: removed; its frontend''s connection and endpoints are closed", id);
        return true;
    }

    private static void close(Served s) {
        try {
            s.server().close();
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "device {0}: closing its vhost-user server: {1}", s.config().id(), e.getMessage());
        }
        s.device().close();
    }

    @Override
    public PortManager device(String id) {
        synchronized (this) {
            if (id == null) {
                if (served.size() == 1) {
                    return new HeldDuringHandover(served.values().iterator().next().ports());
                }
                throw new ApiException(ApiProtocol.INVALID_REQUEST, "this daemon serves " + served.size()
                        + " devices: name one with \"device\" (vportd ctl --device ID; list them with list-devices)");
            }
            Served s = served.get(id);
            if (s == null) {
                throw noSuchDevice(id);
            }
            return new HeldDuringHandover(s.ports());
        }
    }

    private ApiException noSuchDevice(String id) {
        List<String> ids;
        synchronized (this) {
            ids = List.copyOf(served.keySet());
        }
        return new ApiException(ApiProtocol.NO_SUCH_DEVICE, "there is no device '" + id + "' (devices: "
                + (ids.isEmpty() ? "none" : String.join(", ", ids)) + ")");
    }

    /** The devices served now, in the order they started. */
    private synchronized List<Served> snapshot() {
        return List.copyOf(served.values());
    }

    @Override
    public List<DeviceInfo> listDevices() {
        List<Served> all = snapshot();
        List<DeviceInfo> out = new ArrayList<>(all.size());
        for (Served s : all) {
            out.add(info(s));
        }
        return out;
    }

    private static DeviceInfo info(Served s) {
        return new DeviceInfo(s.config().id(), s.config().socketPath(), s.config().maxPorts(),
                s.ports().listPorts().size(), s.ports().frontendConnected());
    }

    @Override
    public String metrics() {
        List<Served> all = snapshot();
        List<Metrics.Source> sources = new ArrayList<>(all.size());
        for (Served s : all) {
            sources.add(s.ports().metricsSource(List.of("device", s.config().id())));
        }
        return Metrics.renderAll(sources, shared);
    }

    // ---------------------------------------------------------------- live hand-over of every device

    private void refuseDuringHandover() {
        if (handingOver) {
            throw new IllegalArgumentException("a live hand-over of this daemon is under way; try again when it is over");
        }
    }

    @Override
    public List<io.vportd.console.handover.DevicesHandover.Unit> hold() throws IOException {
        portChanges.writeLock().lock(); // waits for port changes under way; none starts until it is released
        try {
            synchronized (this) {
                if (handingOver) {
                    throw new IOException("a hand-over is under way already");
                }
                if (!starting.isEmpty()) {
                    throw new IOException("device(s) " + String.join(", ", starting) + " are starting; try again in a moment");
                }
                handingOver = true;
                List<io.vportd.console.handover.DevicesHandover.Unit> out = new ArrayList<>(served.size());
                for (Served s : served.values()) {
                    out.add(new io.vportd.console.handover.DevicesHandover.Unit(s.config().id(), s.config().socketPath(),
                            s.config().allowUnsealedMemory(), s.server(), s.device().dataPlane()));
                }
                return out;
            }
        } finally {
            portChanges.writeLock().unlock();
        }
    }

    @Override
    public synchronized void release() {
        handingOver = false;
    }

    /** Runs a port change of a device unless a live hand-over holds the table (then it is refused). */
    private <T> T portChange(java.util.function.Supplier<T> change) {
        portChanges.readLock().lock();
        try {
            if (handingOver) {
                throw new io.vportd.console.device.PortRequestException(
                        io.vportd.console.device.PortRequestException.Reason.INVALID,
                        "a live hand-over of this daemon is under way; try again when it is over");
            }
            return change.get();
        } finally {
            portChanges.readLock().unlock();
        }
    }

    /** A device's ports as the management API sees them: changes go through {@link #portChange}. */
    private final class HeldDuringHandover implements PortManager {
        private final PortManager ports;

        HeldDuringHandover(PortManager ports) {
            this.ports = ports;
        }

        @Override
        public int maxPorts() {
            return ports.maxPorts();
        }

        @Override
        public List<io.vportd.console.device.PortStatus> listPorts() {
            return ports.listPorts();
        }

        @Override
        public io.vportd.console.device.PortStatus addPort(io.vportd.console.control.PortConfig config) {
            return portChange(() -> ports.addPort(config));
        }

        @Override
        public io.vportd.console.device.RemovalReport removePort(int id) {
            return portChange(() -> ports.removePort(id));
        }

        @Override
        public void resize(int id, int cols, int rows) {
            portChange(() -> {
                ports.resize(id, cols, rows);
                return null;
            });
        }

        @Override
        public boolean frontendConnected() {
            return ports.frontendConnected();
        }

        @Override
        public String metrics() {
            return ports.metrics();
        }

        @Override
        public byte[] readLog(int id, io.vportd.console.portlog.LogFollower follower) {
            return ports.readLog(id, follower);
        }
    }

    @Override
    public Map<String, Long> counters() {
        return shared.counterValues();
    }

    /**
     * Builds a device a previous process handed over from its snapshot, on the least loaded event
     * loop, frozen (see {@link io.vportd.console.handover.RestoredDevices.Builder}).
     */
    ConsoleDevice restore(String id, io.vportd.console.device.DeviceSnapshot snapshot) throws IOException {
        DeviceConfig.checkId(id);
        String before = Logging.DEVICE.get();
        Logging.DEVICE.set(id);
        try {
            return new ConsoleDevice(snapshot, ConsoleDevice::adoptEndpoint, new PortLogContext(id, Path.of(journalSocket)),
                    loops.leastLoaded());
        } finally {
            Logging.DEVICE.set(before);
        }
    }

    /**
     * Serves a device rebuilt by {@link #restore} (its vhost-user server not started yet: the
     * caller thaws and starts it once the previous process lets go).
     *
     * @throws IllegalArgumentException it clashes with a device served here (id, a path)
     */
    void install(io.vportd.console.handover.RestoredDevices.Device r) {
        DeviceConfig c = new DeviceConfig(r.id(), r.socketPath(), r.maxPorts(), r.ports(), r.allowUnsealedMemory());
        Served s;
        synchronized (this) {
            if (served.containsKey(c.id()) || starting.contains(c.id())) {
                throw new IllegalArgumentException("there is a device '" + c.id() + "' already");
            }
            List<Object> held = claims.claimDevice(c);
            s = Served.of(c, r.device(), r.vhost(), held);
            served.put(c.id(), s);
        }
        watch(c.id(), r.device(), r.vhost());
    }

    /** A device's counters beside its server's, its events labelled, and its data plane's death handled. */
    private void watch(String id, ConsoleDevice device, VhostUserServer server) {
        device.dataPlane().metrics().register(server.stats().metrics());
        device.dataPlane().setEventListener(e -> events.accept(id, e));
        device.dataPlane().onUnexpectedStop(() -> Thread.ofPlatform().name("vportd-device-failed").start(() -> {
            LOG.log(Level.ERROR, "device {0}: its data plane stopped unexpectedly; closing the device (the other "
                    + "devices serve on; add it again with add-device)", id);
            failed.incrementAndGet();
            stop(id);
        }));
    }

    /**
     * {@code --take-over --config}: receives every device of the daemon serving now over
     * {@code link} and serves them here, frozen, their servers not started (see {@link
     * #resumeTakenOver}, once the previous process lets go). On failure the previous process is
     * told why (it serves on) and nothing shared with it is closed: the caller exits at once.
     */
    io.vportd.console.handover.RestoredDevices takeOver(io.vportd.console.handover.TakeOver link, Path handoverSocket)
            throws IOException {
        io.vportd.console.handover.RestoredDevices r =
                io.vportd.console.handover.RestoredDevices.from(link, handoverSocket, this::restore);
        String id = null;
        try {
            for (io.vportd.console.handover.RestoredDevices.Device d : r.devices()) {
                id = d.id();
                install(d);
            }
        } catch (RuntimeException e) {
            String why = "device " + id + ": " + e.getMessage();
            link.refuse(why);
            throw new IOException(why, e);
        }
        return r;
    }

    /** The previous process let go: every device taken over thaws and its server starts. */
    void resumeTakenOver(io.vportd.console.handover.RestoredDevices r) {
        for (io.vportd.console.handover.RestoredDevices.Device d : r.devices()) {
            d.resume();
        }
    }

    /**
     * Counters go on from the previous process's values: each device's, and the process's own (call
     * once everything the process registers is registered).
     */
    void carryCounters(io.vportd.console.handover.RestoredDevices r) {
        int n = 0;
        for (io.vportd.console.handover.RestoredDevices.Device d : r.devices()) {
            n += d.device().dataPlane().carryCounters(d.counters());
        }
        n += shared.carry(r.counters());
        LOG.log(Level.DEBUG, "{0} counters carried over from the previous process", n);
    }

    /** Stops every device. */
    @Override
    public void close() {
        List<Served> all;
        synchronized (this) {
            all = List.copyOf(served.values());
            served.clear();
        }
        for (Served s : all) {
            close(s);
        }
        loops.close();
    }

    /** How many event loops run the devices. */
    int eventLoops() {
        return loops.size();
    }
}
