package io.vportd.console;

import io.vportd.console.api.DataPlanePorts;
import io.vportd.console.api.ManagementServer;
import io.vportd.console.api.MetricsHttpServer;
import io.vportd.console.cli.DaemonConfig;
import io.vportd.console.cli.HostPort;
import io.vportd.console.cli.UsageException;
import io.vportd.console.cli.VportdCommand;
import io.vportd.console.ctl.CtlCommand;
import io.vportd.console.device.ConsoleDevice;
import io.vportd.console.handover.DevicesHandover;
import io.vportd.console.handover.HandoverServer;
import io.vportd.console.handover.RestoredDevices;
import io.vportd.console.handover.TakeOver;
import io.vportd.console.handover.Restored;
import io.vportd.console.handover.Checkpointer;
import io.vportd.console.handover.Recovery;
import java.util.Map;
import io.vportd.telemetry.MetricRegistry;
import io.vportd.telemetry.MetricSet;
import io.vportd.vhost.VhostUserServer;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

/** The vportd daemon: parse the command line, build the device, serve vhost-user until stopped. */
public final class Main {

    /** Exit status when the data-plane thread ends on its own (a supervisor should restart vportd). */
    static final int DATA_PLANE_DIED = 70;
    /** Exit status of a --take-over that received state it cannot use (the running daemon resumed). */
    static final int TAKE_OVER_REFUSED = 2;

    private static final System.Logger LOG = System.getLogger("vportd");

    private Main() {
    }

    /**
     * Port logs name the device by its vhost-user socket; the journal socket is journald's unless
     * {@code VPORTD_JOURNAL_SOCKET} points elsewhere (tests run a listener of their own).
     */
    static io.vportd.console.device.PortLogContext logContext(io.vportd.console.cli.DaemonConfig config) {
        String journal = System.getenv("VPORTD_JOURNAL_SOCKET");
        return new io.vportd.console.device.PortLogContext(config.socketPath().toString(),
                journal == null || journal.isEmpty() ? io.vportd.console.portlog.JournalLogTarget.DEFAULT_SOCKET
                        : java.nio.file.Path.of(journal));
    }

    /** Puts the daemon's own counters (vhost-user sessions, the logger) beside the device's, so metrics exports them. */
    static void registerCounters(MetricRegistry registry, MetricSet vhost, MetricSet log) {
        registry.register(vhost);
        registry.register(log);
    }

    /** When main was entered, to tell the JVM's own start from vportd's in a recovery's log line. */
    private static final long MAIN_NANOS = System.nanoTime();

    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("ctl")) {
            java.io.PrintWriter out = new java.io.PrintWriter(System.out, true, java.nio.charset.StandardCharsets.UTF_8);
            java.io.PrintWriter err = new java.io.PrintWriter(System.err, true, java.nio.charset.StandardCharsets.UTF_8);
            int status = CtlCommand.run(java.util.Arrays.copyOfRange(args, 1, args.length), out, err);
            if (System.getenv("VPORTD_AOT_TRAIN") != null) {
                walkCliForAotCache();
            }
            System.exit(status);
            return;
        }
        io.vportd.console.cli.Invocation invocation;
        try {
            invocation = VportdCommand.parseInvocation(args);
        } catch (UsageException e) {
            if (e.isInformational()) {
                System.out.print(e.getMessage());
                System.out.println();
            } else {
                System.err.println("vportd: " + e.getMessage());
            }
            System.exit(e.exitCode());
            return;
        }
        if (System.getenv("VPORTD_AOT_TRAIN") != null) {
            VportdCommand.walkDaemonForAotCache();
        }
        Logging.configure(invocation.logLevel());
        io.vportd.console.handover.HandoverServer.setUnheard(Logging::unheard);
        if (invocation instanceof io.vportd.console.cli.DevicesConfig devices) {
            serveDevices(devices);
            return;
        }
        DaemonConfig config = (DaemonConfig) invocation;
        if (config.takeOver()) {
            takeOver(config);
            return;
        }
        io.vportd.sys.SdNotify manager = io.vportd.sys.SdNotify.fromEnvironment();
        Checkpointer checkpointer = null;
        if (config.fdStore()) {
            if (!manager.enabled()) {
                LOG.log(Level.WARNING, "--fd-store: no $NOTIFY_SOCKET (not started by systemd with Type=notify): "
                        + "crash recovery is off");
            } else {
                Map<String, io.vportd.sys.Fd> leftovers = new java.util.LinkedHashMap<>();
                if (recover(config, manager, leftovers)) {
                    return;
                }
                checkpointer = checkpointer(manager, config.socketPath(), config.apiSocket(),
                        config.metricsListen() == null ? null : config.metricsListen().toString(),
                        config.allowUnsealedMemory(), 0);
                checkpointer.adoptStore(leftovers); // stale descriptors: dropped from the store at the first checkpoint
            }
        }
        ConsoleDevice device;
        VhostUserServer server;
        try {
            device = new ConsoleDevice(config.maxPorts(), config.ports(), logContext(config));
            device.dataPlane().setPollMicros(config.pollMicros());
        } catch (Exception e) {
            System.err.println("vportd: cannot set up the ports: " + e.getMessage());
            System.exit(1);
            return;
        }
        try {
            server = new VhostUserServer(config.socketPath(), device,
                    new VhostUserServer.Options(config.allowUnsealedMemory(), VhostUserServer.DEFAULT_HANDSHAKE_TIMEOUT));
            if (checkpointer != null) {
                server.watchSessions(checkpointer::sessionChanged);
            }
            server.start();
        } catch (Exception e) {
            device.close();
            System.err.println("vportd: cannot serve vhost-user on " + config.socketPath() + ": " + e.getMessage());
            System.exit(1);
            return;
        }
        LOG.log(Level.INFO, "vportd serving {0} port(s) on {1}; max ports {2}, {3} queues",
                config.ports().size(), config.socketPath(), config.maxPorts(), device.queueCount());
        serve(config.socketPath(), config.apiSocket(), config.metricsListen(), config.allowUnsealedMemory(), device,
                server, null, java.util.Map.of(), false, checkpointer, config);
    }

    /**
     * Registers {@code teardown} as what a stop (SIGTERM, SIGINT) runs. A stop that came while the
     * daemon was still starting finds the JVM shutting down already and the hook refused: the
     * teardown then runs at once, here (sockets removed, as in any stop), and false is returned.
     */
    private static boolean onStop(Thread teardown) {
        try {
            Runtime.getRuntime().addShutdownHook(teardown);
            return true;
        } catch (IllegalStateException shuttingDown) {
            teardown.run();
            return false;
        }
    }

    /**
     * This ctl run trains the launcher's AOT cache of the command line (packaging/aot-train sets
     * VPORTD_AOT_TRAIN): the cache holds what the training JVM loaded and linked. Walk what
     * {@code vportd --help}, {@code --version} and {@code ctl --help} use too, or each of them
     * would read and link it from the jar. (The daemon's cache is trained apart, on a daemon: a
     * class in a cache is loaded at every start, so neither cache holds the other's classes.)
     */
    private static void walkCliForAotCache() {
        VportdCommand.walkCliForAotCache();
        java.io.PrintWriter nowhere = new java.io.PrintWriter(java.io.Writer.nullWriter());
        CtlCommand.run(new String[] {"--help"}, nowhere, nowhere);
    }

    /**
     * {@code --fd-store} under systemd: recovers the device from what the service manager passed
     * back, if it holds a checkpoint, and serves it (true: the daemon ran and ended). False when
     * there is nothing to recover, or recovery failed (logged: the guest's previous connection
     * then ends); descriptors passed but not used are left in {@code leftovers}.
     */
    private static boolean recover(DaemonConfig config, io.vportd.sys.SdNotify manager, Map<String, io.vportd.sys.Fd> leftovers) {
        io.vportd.sys.ListenFds passed;
        try {
            passed = io.vportd.sys.ListenFds.fromEnvironment();
        } catch (java.io.IOException | RuntimeException e) {
            LOG.log(Level.ERROR, "--fd-store: the descriptors systemd passed are unusable ({0}); starting afresh",
                    e.getMessage());
            return false;
        }
        java.util.Set<String> names = java.util.Set.copyOf(passed.names());
        Recovery.Recovered r;
        try {
            r = Recovery.from(passed, config.socketPath(), logContext(config));
        } catch (java.io.IOException | RuntimeException e) {
            // The store still serves the old sockets (their listeners are in it): a fresh start
            // here would find its paths busy. Empty the store and let the service manager start
            // vportd again, afresh; the guest's previous connection ends with the store.
            LOG.log(Level.ERROR, "--fd-store: cannot recover from the descriptor store ({0}); emptying the store and "
                    + "exiting so that the next start is a fresh one (the guest''s previous connection ends)", e.getMessage());
            passed.close();
            Recovery.emptyStore(manager, names);
            Logging.flush();
            System.exit(1);
            return true;
        }
        if (r == null) {
            leftovers.putAll(Recovery.takeAll(passed));
            return false;
        }
        if (config.metricsListen() == null && r.metricsListen() != null) {
            LOG.log(Level.DEBUG, "metrics listen address {0} comes from the checkpoint", r.metricsListen());
        }
        Checkpointer checkpointer = checkpointer(manager, config.socketPath(), r.apiSocket(), r.metricsListen(),
                r.allowUnsealedMemory(), r.recoveries());
        checkpointer.adoptStore(r.store());
        r.vhost().watchSessions(checkpointer::sessionChanged);
        r.device().dataPlane().setPollMicros(config.pollMicros());
        r.device().dataPlane().thawAfterCrash();
        r.vhost().start();
        long sinceStart = ProcessHandle.current().info().startInstant()
                .map(t -> java.time.Duration.between(t, java.time.Instant.now()).toMillis()).orElse(-1L);
        LOG.log(Level.WARNING, "recovered from the descriptor store (recovery {0}): serving {1} port(s) on {2}, {3} ms "
                + "after this process started ({4} ms of them in vportd''s main); bytes in flight when the previous process "
                + "ended may be lost or repeated", r.recoveries(), r.portCount(), config.socketPath(), sinceStart,
                (System.nanoTime() - MAIN_NANOS) / 1_000_000);
        HostPort metrics = config.metricsListen() != null ? config.metricsListen()
                : r.metricsListen() == null ? null : HostPort.parse(r.metricsListen());
        serve(config.socketPath(), r.apiSocket(), metrics, r.allowUnsealedMemory(), r.device(), r.vhost(), null,
                java.util.Map.of(), true, checkpointer, config);
        return true;
    }

    /** The checkpoint keeper of {@code --fd-store} for a daemon with these facts (see {@link Checkpointer}). */
    private static Checkpointer checkpointer(io.vportd.sys.SdNotify manager, Path socketPath, Path apiSocket,
                                             String metricsListen, boolean allowUnsealedMemory, long recoveries) {
        return new Checkpointer(manager, new Checkpointer.Daemon(socketPath.toString(),
                apiSocket == null ? null : apiSocket.toString(), metricsListen, allowUnsealedMemory), recoveries);
    }

    /**
     * A take-over that cannot use what the running daemon sent. Nothing shared with the running
     * daemon may be closed in a way it would notice: no cleanup, no shutdown hooks (they remove
     * socket files). It resumes on its own, every device of it.
     */
    private static void haltRefused(Exception e) {
        System.err.println("vportd: --take-over: " + e.getMessage() + "; the running vportd serves on");
        Logging.flush();
        Runtime.getRuntime().halt(TAKE_OVER_REFUSED);
    }

    /** Tells the running daemon this process is ready and waits for its go; halts without it. */
    private static void readyOrHalt(TakeOver link) {
        try {
            link.ready();
        } catch (java.io.IOException e) {
            System.err.println("vportd: --take-over: " + e.getMessage());
            Logging.flush();
            Runtime.getRuntime().halt(1);
        }
        link.close();
    }

    /** {@code --take-over}: receive the running daemon's device, rebuild it, and serve once it lets go. */
    private static void takeOver(DaemonConfig config) {
        TakeOver link;
        try {
            TakeOver.checkServed(config.socketPath());
            Logging.quietly(TakeOver::rehearse); // warm this JVM up before the running daemon pauses
            link = TakeOver.connect(config.socketPath());
        } catch (java.io.IOException e) {
            System.err.println("vportd: --take-over: " + e.getMessage());
            System.exit(1);
            return;
        }
        Restored r;
        try {
            r = Restored.from(link, config.socketPath(), logContext(config));
        } catch (java.io.IOException | RuntimeException e) {
            haltRefused(e);
            return;
        }
        readyOrHalt(link);
        long go = System.nanoTime();
        r.resume(config.pollMicros()); // the poll window is this process's own option, not handed over
        long serving = System.nanoTime();
        long pausedMicros = (serving - r.pausedAtNanos()) / 1000;
        r.logPhases(go, serving);
        LOG.log(Level.INFO, "hand-over complete: serving {0} port(s) on {1}; the guest''s ports were paused {2} ms",
                r.portCount(), config.socketPath(), String.format(java.util.Locale.ROOT, "%.1f", pausedMicros / 1000.0));
        HostPort metrics = config.metricsListen() != null ? config.metricsListen()
                : r.metricsListen() == null ? null : HostPort.parse(r.metricsListen());
        serve(config.socketPath(), r.apiSocket(), metrics, r.allowUnsealedMemory(), r.device(), r.vhost(),
                r.handoverListener(), r.counters(), true, null, config);
    }

    /** Everything around a serving device: management API, metrics, the hand-over socket, shutdown. */
    private static void serve(Path socketPath, Path apiSocket, HostPort metricsListen, boolean allowUnsealedMemory,
                              ConsoleDevice device, VhostUserServer server, io.vportd.sys.Fd handedListener,
                              java.util.Map<String, Long> carriedCounters, boolean continuing, Checkpointer checkpointer,
                              DaemonConfig config) {
        // Issue 11.3c: a process whose data plane died must not look alive to its supervisor.
        device.dataPlane().onUnexpectedStop(() -> Thread.ofPlatform().name("vportd-exit").start(() -> {
            LOG.log(Level.ERROR, "the data plane stopped unexpectedly; exiting");
            System.exit(DATA_PLANE_DIED);
        }));
        ManagementServer api = null;
        MetricsHttpServer metrics = null;
        HandoverServer handover = null;
        io.vportd.console.web.WebServer web = null;
        try {
            DataPlanePorts ports = new DataPlanePorts(device.dataPlane());
            registerCounters(device.dataPlane().metrics(), server.stats().metrics(), Logging.metrics());
            boolean tookOver = handedListener != null;
            if (checkpointer != null) {
                device.dataPlane().metrics().register(checkpointer.metrics());
                checkpointer.start();
                device.dataPlane().checkpointTo(checkpointer::deviceChanged);
            }
            // After a take-over the guest is served already: a management API or metrics listener
            // that cannot start is an error to log, not a reason to drop the guest's device.
            if (apiSocket != null) {
                try {
                    api = tookOver ? ManagementServer.replacing(apiSocket, ports) : ManagementServer.start(apiSocket, ports);
                    device.dataPlane().metrics().register(api.metrics());
                    device.dataPlane().setEventListener(api);
                } catch (Exception e) {
                    if (!continuing) {
                        throw e;
                    }
                    LOG.log(Level.ERROR, "the management API could not start on {0}: {1}; serving on without it",
                            apiSocket, e.getMessage());
                }
            }
            if (metricsListen != null) {
                try {
                    metrics = continuing ? MetricsHttpServer.startRetrying(metricsListen, ports::metrics)
                            : MetricsHttpServer.start(metricsListen, ports::metrics);
                } catch (Exception e) {
                    if (!continuing) {
                        throw e;
                    }
                    LOG.log(Level.ERROR, "metrics could not be served on {0}: {1}; serving on without them",
                            metricsListen, e.getMessage());
                }
            }
            // The hand-over socket last: the management API is up as soon as possible after the
            // vhost-user socket (clients that see one expect the other).
            HandoverServer.Context context = new HandoverServer.Context(socketPath, apiSocket,
                    metricsListen == null ? null : metricsListen.toString(), allowUnsealedMemory, server,
                    device.dataPlane(), Main::exitAfterHandover);
            handover = tookOver ? HandoverServer.adopt(context, handedListener) : HandoverServer.start(context);
            device.dataPlane().metrics().register(handover.stats().metrics());
            if (tookOver) {
                handover.stats().tookOver();
            }
            web = startWeb(config, ports, device, api, continuing);
            if (!carriedCounters.isEmpty()) {
                int n = device.dataPlane().carryCounters(carriedCounters);
                LOG.log(Level.DEBUG, "{0} counters carried over from the previous process", n);
            }
        } catch (Exception e) {
            if (web != null) {
                web.close();
            }
            if (handover != null) {
                handover.close();
            }
            if (api != null) {
                api.close();
            }
            if (metrics != null) {
                metrics.close();
            }
            try {
                server.close();
            } catch (Exception closing) {
                e.addSuppressed(closing);
            }
            device.close();
            System.err.println("vportd: cannot start the management API, metrics, the web console or the hand-over socket: "
                    + e.getMessage());
            System.exit(1);
            return;
        }
        ManagementServer apiServer = api;
        MetricsHttpServer metricsServer = metrics;
        HandoverServer handoverServer = handover;
        io.vportd.console.web.WebServer webServer = web;
        CountDownLatch stopped = new CountDownLatch(1);
        io.vportd.sys.SdNotify manager = io.vportd.sys.SdNotify.fromEnvironment();
        if (!onStop(new Thread(() -> {
            LOG.log(Level.INFO, "shutting down");
            tell(manager, "STOPPING=1");
            if (checkpointer != null) {
                // --fd-store: the store decides. A restart recovers from it (so nothing may be torn
                // down: no socket file removed, no session reset); a stop empties it, which ends the
                // guest's connection as any stop does.
                if (!checkpointer.awaitIdle(2000)) {
                    LOG.log(Level.WARNING, "the last checkpoint was not stored within 2 s; a restart recovers from the one before");
                }
                LOG.log(Level.INFO, "leaving the device to the descriptor store");
                Logging.flush();
                Runtime.getRuntime().halt(0);
            }
            handoverServer.close();
            if (webServer != null) {
                webServer.close();
            }
            if (metricsServer != null) {
                metricsServer.close();
            }
            if (apiServer != null) {
                device.dataPlane().setEventListener(null);
                apiServer.close();
            }
            try {
                server.close();
            } catch (Exception e) {
                LOG.log(Level.WARNING, "closing the vhost-user server: {0}", e.getMessage());
            }
            device.close();
            io.vportd.console.endpoint.BlockingFdBridge.awaitOutputPumps(2000);
            Logging.flush();
            stopped.countDown();
        }, "vportd-shutdown"))) {
            return;
        }
        // Under systemd (Type=notify): started once the vhost-user socket and everything else listen,
        // so a unit ordered after vportd starts QEMU only when it can connect.
        tell(manager, "READY=1\nSTATUS=serving " + socketPath);
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * {@code --web-listen}: the web console, with the device's port events (beside the management
     * API's, when there is one). After a take-over the previous process may hold the address a
     * moment longer; a web console that cannot start then is logged, and the guest is served on.
     */
    private static io.vportd.console.web.WebServer startWeb(DaemonConfig config, DataPlanePorts ports,
                                                            ConsoleDevice device, ManagementServer api,
                                                            boolean tookOver) throws java.io.IOException {
        if (config.webListen() == null) {
            return null;
        }
        io.vportd.console.web.WebServer web;
        try {
            web = io.vportd.console.web.WebConsole.start(config.webListen().host(), config.webListen().port(),
                    config.webTokenFile(), ports, tookOver ? 5000 : 0);
        } catch (java.io.IOException e) {
            if (!tookOver) {
                throw new java.io.IOException("--web-listen " + config.webListen() + ": " + e.getMessage(), e);
            }
            LOG.log(Level.ERROR, "the web console could not start on {0}: {1}; serving on without it",
                    config.webListen(), e.getMessage());
            return null;
        }
        device.dataPlane().metrics().register(web.stats().metrics());
        io.vportd.console.device.PortEventListener w = web;
        device.dataPlane().setEventListener(api == null ? w : e -> {
            api.onPortEvent(e);
            w.onPortEvent(e);
        });
        return web;
    }

    /**
     * {@code --config FILE}: every device of the file, each with its own vhost-user socket and data
     * plane, one management API and one metrics listener for all of them; with {@code --take-over},
     * every device of the daemon serving now instead.
     */
    private static void serveDevices(io.vportd.console.cli.DevicesConfig config) {
        String journal = System.getenv("VPORTD_JOURNAL_SOCKET");
        Devices devices;
        try {
            devices = new Devices(config.apiSocket(), config.metricsListen(),
                    journal == null || journal.isEmpty()
                            ? io.vportd.console.portlog.JournalLogTarget.DEFAULT_SOCKET.toString() : journal,
                    config.eventLoops() > 0 ? config.eventLoops() : io.vportd.console.device.EventLoop.Group.defaultCount());
        } catch (java.io.IOException | RuntimeException e) {
            System.err.println("vportd: cannot start the event loops: " + e.getMessage());
            System.exit(1);
            return;
        }
        devices.shared().register(Logging.metrics());
        if (config.takeOver()) {
            takeOverDevices(config, devices);
            return;
        }
        ManagementServer api = null;
        MetricsHttpServer metrics = null;
        DevicesHandover handover = null;
        try {
            startAll(devices, config);
            if (config.apiSocket() != null) {
                api = ManagementServer.start(config.apiSocket(), devices);
                devices.shared().register(api.metrics());
                ManagementServer events = api;
                devices.onEvents(events::onPortEvent);
            }
            if (config.metricsListen() != null) {
                metrics = MetricsHttpServer.start(config.metricsListen(), devices::metrics);
            }
            if (config.handover() != null) {
                handover = DevicesHandover.start(handoverContext(config.handover(), config.apiSocket(),
                        config.metricsListen(), devices));
                devices.shared().register(handover.stats().metrics());
            } else {
                LOG.log(Level.INFO, "{0} has neither api-socket nor handover-socket: no live hand-over (--take-over) "
                        + "of this daemon", config.source());
            }
        } catch (Exception e) {
            if (metrics != null) {
                metrics.close();
            }
            if (api != null) {
                api.close();
            }
            devices.close();
            System.err.println("vportd: " + e.getMessage());
            System.exit(1);
            return;
        }
        LOG.log(Level.INFO, "vportd serving {0} device(s) from {1} on {2} event loop(s)", config.devices().size(),
                config.source(), devices.eventLoops());
        runDevices(devices, api, metrics, handover, config.devices().size() + " device(s) from " + config.source());
    }

    private static DevicesHandover.Context handoverContext(Path handoverSocket, Path apiSocket, HostPort metricsListen,
                                                           Devices devices) {
        return new DevicesHandover.Context(handoverSocket, apiSocket,
                metricsListen == null ? null : metricsListen.toString(), devices, Main::exitAfterHandover);
    }

    /**
     * {@code --take-over --config FILE}: receive every device of the daemon listening on FILE's
     * hand-over socket, rebuild them on this process's event loops, and serve them once it lets go.
     */
    private static void takeOverDevices(io.vportd.console.cli.DevicesConfig config, Devices devices) {
        Path socket = config.handover();
        TakeOver link;
        try {
            TakeOver.checkListening(socket);
            // Warm this JVM up before the running daemon pauses, building on this daemon's own loops.
            Logging.quietly(() -> TakeOver.rehearseDevices(devices::restore));
            link = TakeOver.connectTo(socket);
        } catch (java.io.IOException e) {
            System.err.println("vportd: --take-over: " + e.getMessage());
            System.exit(1);
            return;
        }
        RestoredDevices r;
        try {
            r = devices.takeOver(link, socket);
        } catch (java.io.IOException | RuntimeException e) {
            haltRefused(e);
            return;
        }
        readyOrHalt(link);
        devices.resumeTakenOver(r);
        long pausedMicros = (System.nanoTime() - r.pausedAtNanos()) / 1000;
        r.logPhases();
        LOG.log(Level.INFO, "hand-over complete: serving {0} device(s) of {1} port(s) in all on {2} event loop(s); the "
                + "guests'' ports were paused {3} ms", r.devices().size(), r.portCount(), devices.eventLoops(),
                String.format(java.util.Locale.ROOT, "%.1f", pausedMicros / 1000.0));
        // The guests are served already: what cannot start now is logged, not a reason to drop them.
        ManagementServer api = null;
        if (r.apiSocket() != null) {
            try {
                api = ManagementServer.replacing(r.apiSocket(), devices);
                devices.shared().register(api.metrics());
                ManagementServer events = api;
                devices.onEvents(events::onPortEvent);
            } catch (Exception e) {
                LOG.log(Level.ERROR, "the management API could not start on {0}: {1}; serving on without it",
                        r.apiSocket(), e.getMessage());
            }
        }
        HostPort metricsListen = config.metricsListen() != null ? config.metricsListen()
                : r.metricsListen() == null ? null : HostPort.parse(r.metricsListen());
        MetricsHttpServer metrics = null;
        if (metricsListen != null) {
            try {
                metrics = MetricsHttpServer.startRetrying(metricsListen, devices::metrics);
            } catch (Exception e) {
                LOG.log(Level.ERROR, "metrics could not be served on {0}: {1}; serving on without them", metricsListen,
                        e.getMessage());
            }
        }
        DevicesHandover handover = DevicesHandover.adopt(handoverContext(socket, r.apiSocket(), metricsListen, devices),
                r.handoverListener());
        devices.shared().register(handover.stats().metrics());
        handover.stats().tookOver();
        devices.carryCounters(r);
        runDevices(devices, api, metrics, handover, r.devices().size() + " device(s) taken over");
    }

    /** Serves the devices until a signal: then everything closes in order. */
    private static void runDevices(Devices devices, ManagementServer api, MetricsHttpServer metrics,
                                   DevicesHandover handover, String status) {
        CountDownLatch stopped = new CountDownLatch(1);
        io.vportd.sys.SdNotify manager = io.vportd.sys.SdNotify.fromEnvironment();
        if (!onStop(new Thread(() -> {
            LOG.log(Level.INFO, "shutting down");
            tell(manager, "STOPPING=1");
            if (handover != null) {
                handover.close();
            }
            if (metrics != null) {
                metrics.close();
            }
            if (api != null) {
                devices.onEvents(null);
                api.close();
            }
            devices.close();
            io.vportd.console.endpoint.BlockingFdBridge.awaitOutputPumps(2000);
            Logging.flush();
            stopped.countDown();
        }, "vportd-shutdown"))) {
            return;
        }
        tell(manager, "READY=1\nSTATUS=serving " + status);
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Starts the devices of the file, in order; the first that cannot start fails the start.
     * (Starting them on several threads saved little on two CPUs and cost RSS: glibc gives each
     * starting thread a malloc arena of its own.)
     */
    private static void startAll(Devices devices, io.vportd.console.cli.DevicesConfig config) throws java.io.IOException {
        for (io.vportd.console.cli.DeviceConfig d : config.devices()) {
            try {
                devices.start(d);
            } catch (java.io.IOException | RuntimeException e) {
                throw new java.io.IOException("device " + d.id() + " (" + config.source() + "): " + e.getMessage(), e);
            }
        }
    }

    /** One notification to the service manager, if there is one; a failure is logged, never fatal. */
    private static void tell(io.vportd.sys.SdNotify manager, String state) {
        try {
            manager.send(state);
        } catch (java.io.IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "cannot notify the service manager ({0}): {1}", state.replace('\n', ' '), e.getMessage());
        }
    }

    /**
     * The next process serves now: leave at once, without shutdown hooks (they would close the
     * device and remove socket files the next process uses) and with every descriptor left open
     * for it.
     */
    private static void exitAfterHandover() {
        Logging.flush();
        Runtime.getRuntime().halt(0);
    }
}
