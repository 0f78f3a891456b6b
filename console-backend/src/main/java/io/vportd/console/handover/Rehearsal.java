package io.vportd.console.handover;

import io.vportd.console.control.ControlListener;
import io.vportd.console.control.ControlMachine;
import io.vportd.console.control.PortConfig;
import io.vportd.console.device.ConsoleDevice;
import io.vportd.console.device.DeviceSnapshot;
import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.endpoint.Handed;
import io.vportd.sys.EventFd;
import io.vportd.sys.Fd;
import io.vportd.sys.MemFd;
import io.vportd.sys.UnixSockets;
import io.vportd.vhost.Codec;
import io.vportd.vhost.Request;
import io.vportd.vhost.Session;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Warm-ups for both sides of a hand-over, so the guest's pause holds compiled code rather than a
 * JVM loading, linking and interpreting it for the first time (in a cold JVM that was most of the
 * pause). The taking process runs {@link #run} before it connects: {@link #ROUNDS} rounds of the
 * exact taking path on throw-away descriptors: a state record of {@link #PORTS} ports (a console
 * and socket ports with a connected client) with a session that starts every ring over a sealed
 * memfd, carried over a socket pair by the hand-over link, decoded, built into a device, replayed
 * into a started vhost-user server, which is then suspended as for a hand-over and closed. The
 * running daemon runs {@link #warmSender} when a take-over is asked for, before it stops
 * anything. A hand-over of a daemon of several devices ({@code --config}) has its own pair,
 * {@link #runDevices} and {@link #warmDevicesSender}: the same, with a record of {@link #DEVICES}
 * such devices, each built by the taking daemon's own builder (on its event loops). Nothing
 * outside this process is touched.
 */
final class Rehearsal {

    private static final System.Logger LOG = System.getLogger("vportd.handover");
    /** The default device size: rounds this big make the per-port and per-ring code compiled. */
    static final int PORTS = 31;
    static final int ROUNDS = 25;
    /**
     * Longest wait, after the rounds, for the compiler to finish what they queued (see {@link
     * CompilerQuiet}): the taking process serves nothing yet, the running daemon still serves.
     */
    static final long TAKER_COMPILER_WAIT_MILLIS = 3000;
    static final long SENDER_COMPILER_WAIT_MILLIS = 1000;
    /** Rounds of the stopping path a running daemon rehearses when a take-over is asked for. */
    static final int SENDER_STOP_ROUNDS = 5;
    /** Devices in a rehearsal of a hand-over of several ({@code --config}). */
    static final int DEVICES = 2;
    /** The vhost-user socket a rehearsed one-device record names (nothing is bound there). */
    static final Path SOCKET = Path.of("/nonexistent/vportd-rehearsal.sock");
    /** The hand-over socket a rehearsed record of several devices names (nothing is bound there). */
    static final Path DEVICES_HANDOVER_SOCKET = Path.of("/nonexistent/vportd-rehearsal.handover");

    private Rehearsal() {
    }

    /** Best effort: a failure only means a longer pause, so it is logged and ignored. */
    static void run() {
        long t0 = System.nanoTime();
        try {
            for (int i = 0; i < ROUNDS; i++) {
                rehearse();
            }
        } catch (Exception | LinkageError e) {
            LOG.log(System.Logger.Level.WARNING, "hand-over rehearsal failed (the pause will be longer): {0}", e.toString());
        }
        System.gc(); // the rounds' garbage goes now, not in a collection during the pause (this process serves nothing yet)
        long waited = CompilerQuiet.await(TAKER_COMPILER_WAIT_MILLIS);
        LOG.log(System.Logger.Level.DEBUG, "hand-over rehearsal took {0} ms, of which {1} ms waiting for the compiler",
                (System.nanoTime() - t0) / 1_000_000, waited);
    }

    /**
     * The sending side's warm-up, run by the running daemon's hand-over thread when a new process
     * asks to take over, before anything stops: full-size state records encoded and sent over a
     * socket pair (see {@link #carry}), so the pause does not include this code running cold.
     */
    static void warmSender() {
        try {
            for (int i = 0; i < ROUNDS; i++) {
                closeAll(carriedSample().fds());
            }
        } catch (Exception | LinkageError e) {
            LOG.log(System.Logger.Level.DEBUG, "hand-over warm-up failed: {0}", e.toString());
        }
        warmStopping();
        CompilerQuiet.await(SENDER_COMPILER_WAIT_MILLIS);
    }

    /**
     * {@link #run} for {@code --take-over --config}: {@link #ROUNDS} rounds of the taking path of a
     * daemon of several devices, each device built by {@code builder} (the taking daemon's own,
     * so on its event loops), replayed, started, suspended as for a hand-over and closed. Best
     * effort, as {@link #run}.
     */
    static void runDevices(RestoredDevices.Builder builder) {
        long t0 = System.nanoTime();
        try {
            for (int i = 0; i < ROUNDS; i++) {
                rehearseDevices(builder);
            }
        } catch (Exception | LinkageError e) {
            LOG.log(System.Logger.Level.WARNING, "hand-over rehearsal failed (the pause will be longer): {0}", e.toString());
        }
        System.gc();
        long waited = CompilerQuiet.await(TAKER_COMPILER_WAIT_MILLIS);
        LOG.log(System.Logger.Level.DEBUG, "hand-over rehearsal of {0} devices took {1} ms, of which {2} ms waiting for the "
                + "compiler", DEVICES, (System.nanoTime() - t0) / 1_000_000, waited);
    }

    /** The sending side's warm-up for a daemon of several devices (see {@link #warmSender}). */
    static void warmDevicesSender() {
        try {
            for (int i = 0; i < ROUNDS; i++) {
                try (Props props = new Props()) {
                    HandoverState.Encoded e = props.devicesState();
                    Fd[] pair = UnixSockets.pair();
                    try (HandoverLink out = new HandoverLink(pair[0]); TakeOver in = new TakeOver(new HandoverLink(pair[1]))) {
                        HandoverServer.sendState(out, e, 0);
                        try {
                            in.receiveDevices();
                        } finally {
                            closeAll(in.received());
                        }
                    }
                }
            }
        } catch (Exception | LinkageError e) {
            LOG.log(System.Logger.Level.DEBUG, "hand-over warm-up failed: {0}", e.toString());
        }
        warmStopping();
        CompilerQuiet.await(SENDER_COMPILER_WAIT_MILLIS);
    }

    /**
     * Runs work whose log lines must not be written (set by the daemon: {@code Logging.unheard});
     * without it, the running side does not rehearse its stopping path (see {@link #warmStopping}).
     */
    private static volatile java.util.function.Consumer<Runnable> unheard;

    /** How the running daemon keeps a rehearsal's lines out of its log (see {@link #warmStopping}). */
    static void setUnheard(java.util.function.Consumer<Runnable> runner) {
        unheard = runner;
    }

    /**
     * The running side's stopping path (vhost-user suspension, {@code prepareHandover}, {@code
     * freezeForHandover}) run {@link #SENDER_STOP_ROUNDS} times on a throw-away device, so a daemon's
     * first hand-over does not run it cold inside the pause. Its log lines are kept out of the
     * daemon's log; when the daemon gave no way to do that, this is skipped. Best effort.
     */
    private static void warmStopping() {
        java.util.function.Consumer<Runnable> runner = unheard;
        if (runner == null) {
            return;
        }
        runner.accept(() -> {
            try {
                for (int i = 0; i < SENDER_STOP_ROUNDS; i++) {
                    rehearse();
                }
            } catch (Exception | LinkageError e) {
                LOG.log(System.Logger.Level.DEBUG, "hand-over warm-up of the stopping path failed: {0}", e.toString());
            }
        });
    }

    /** One round of {@link #runDevices}: the record carried, every device rebuilt, started, stopped again, closed. */
    static void rehearseDevices(RestoredDevices.Builder builder) throws Exception {
        RestoredDevices r;
        try (Props props = new Props()) {
            HandoverState.Encoded e = props.devicesState();
            Fd[] pair = UnixSockets.pair();
            try (HandoverLink out = new HandoverLink(pair[0]); TakeOver in = new TakeOver(new HandoverLink(pair[1]))) {
                HandoverServer.sendState(out, e, 0);
                try {
                    r = RestoredDevices.from(in, DEVICES_HANDOVER_SOCKET, builder);
                } catch (Exception | LinkageError ex) {
                    closeAll(in.received());
                    throw ex;
                }
            }
        }
        r.handoverListener().closeQuietly();
        for (RestoredDevices.Device d : r.devices()) {
            try (ConsoleDevice device = d.device()) {
                device.dataPlane().thaw();
                d.vhost().start();
                io.vportd.vhost.VhostUserServer.Suspension suspension = d.vhost().suspend(java.time.Duration.ofSeconds(5));
                device.dataPlane().prepareHandover(1000);
                device.dataPlane().freezeForHandover();
                suspension.resume();
                device.dataPlane().abandonHandover();
                d.vhost().close();
            }
        }
    }

    /**
     * One round on the taking side, the way a real hand-over goes: the record carried over a
     * socket pair and taken by {@link Restored#from} (decoded, a device built from it, the session
     * replayed into a vhost-user server, the real one, serving a socket pair) and started; then
     * the round stops that server the way a running daemon does for a hand-over, and closes
     * everything.
     */
    static void rehearse() throws Exception {
        Restored r;
        try (Props props = new Props()) {
            HandoverState.Encoded e = props.state();
            Fd[] pair = UnixSockets.pair();
            try (HandoverLink out = new HandoverLink(pair[0]); TakeOver in = new TakeOver(new HandoverLink(pair[1]))) {
                HandoverServer.sendState(out, e, 0);
                try {
                    r = Restored.from(in, SOCKET, io.vportd.console.device.PortLogContext.DEFAULT);
                } catch (Exception | LinkageError ex) {
                    closeAll(in.received());
                    throw ex;
                }
            }
        }
        r.handoverListener().closeQuietly();
        try (ConsoleDevice device = r.device()) {
            io.vportd.vhost.VhostUserServer vhost = r.vhost();
            device.dataPlane().thaw();
            vhost.start();
            io.vportd.vhost.VhostUserServer.Suspension suspension = vhost.suspend(java.time.Duration.ofSeconds(5));
            device.dataPlane().prepareHandover(1000);
            device.dataPlane().freezeForHandover();
            suspension.resume();
            device.dataPlane().thaw();
            vhost.close();
        }
    }

    /** A sample record as the taking side receives it: the descriptors are the caller's (see {@link #closeAll}). */
    static Carried carriedSample() throws Exception {
        try (Props props = new Props()) {
            return carry(props.state());
        }
    }

    /**
     * What a running daemon's state record of {@link #PORTS} ports refers to, made of throw-away
     * descriptors: a console and socket ports with a connected client (socket pairs stand in for
     * both), a vhost-user listener and connection (socket pairs), a sealed memfd as guest memory
     * and one kick and one call eventfd shared by every ring. The session replay starts every
     * ring, as a frontend's would.
     */
    static final class Props implements AutoCloseable {
        static final long MEMORY = 1 << 20;
        static final long USER = 0x7000_0000_0000L;
        final List<Fd> fds = new ArrayList<>();
        /**
         * Where the console's port log of a rehearsed device goes (a port log is opened for the
         * first time when a device is rebuilt: its writer, file and time stamps must be warm too);
         * null if no temporary directory can be made, and the console then logs nothing.
         */
        private final Path logDir = tempDir();
        private int logs;

        private static Path tempDir() {
            try {
                return java.nio.file.Files.createTempDirectory("vportd-rehearsal");
            } catch (java.io.IOException | RuntimeException e) {
                return null;
            }
        }

        private io.vportd.sys.Terminal.Pty openPty() {
            try {
                io.vportd.sys.Terminal.Pty pty = io.vportd.sys.Terminal.openPty();
                keep(pty.master());
                return pty;
            } catch (io.vportd.sys.NativeException | RuntimeException e) {
                return null;
            }
        }

        private io.vportd.console.portlog.LogSpec consoleLog() {
            return logDir == null ? null : new io.vportd.console.portlog.LogSpec(logDir.resolve("console-" + logs++ + ".log"),
                    false, io.vportd.console.portlog.LogSpec.MIN_LOG_MAX, 1, true,
                    io.vportd.console.portlog.LogSpec.CONSOLE_REPLAY_DEFAULT);
        }

        private Fd keep(Fd fd) {
            fds.add(fd);
            return fd;
        }

        HandoverState.Daemon daemon(String socketPath) throws Exception {
            ControlMachine machine = new ControlMachine(PORTS, ControlListener.NONE);
            List<DeviceSnapshot.Port> ports = new ArrayList<>();
            for (int id = 0; id < PORTS; id++) {
                PortConfig c;
                Handed h = new Handed();
                if (id == 0) {
                    // The console on a terminal, as consoles often are: a real pty (its size is set);
                    // where no pty can be had, on nothing.
                    io.vportd.sys.Terminal.Pty pty = openPty();
                    if (pty == null) {
                        c = new PortConfig(0, null, true, 80, 24, null, new EndpointSpec.Null(), consoleLog());
                    } else {
                        c = new PortConfig(0, null, true, 80, 24, null, new EndpointSpec.Pty(null), consoleLog());
                        Fd slave = keep(io.vportd.sys.Io.open(Path.of(pty.slavePath()),
                                io.vportd.sys.Io.O_RDWR | io.vportd.sys.Io.O_NOCTTY | io.vportd.sys.Io.O_CLOEXEC, 0));
                        h.fd("master", pty.master().fd()).fd("slave", slave.fd()).fact("slave-path", pty.slavePath());
                    }
                } else if (id == 1) {
                    // A TCP port (socket pairs stand in for its listener and client, as for the Unix ones).
                    c = new PortConfig(id, "rehearsal." + id, false, 0, 0, null,
                            new EndpointSpec.Tcp(EndpointSpec.Tcp.DEFAULT_HOST, 1));
                    Fd[] pair = UnixSockets.pair();
                    h.fd("listener", keep(pair[0]).fd()).fd("peer", keep(pair[1]).fd());
                } else {
                    c = new PortConfig(id, "rehearsal." + id, false, 0, 0, null,
                            new EndpointSpec.UnixSocket(Path.of("/nonexistent/rehearsal-" + id + ".sock")));
                    Fd[] pair = UnixSockets.pair();
                    h.fd("listener", keep(pair[0]).fd()).fd("peer", keep(pair[1]).fd());
                }
                machine.addPort(c);
                ports.add(new DeviceSnapshot.Port(c, true, 0, 0, 0, new byte[0], 0, h, new long[] {1}, new byte[] {'x'}));
            }
            DeviceSnapshot snapshot = new DeviceSnapshot(PORTS, machine.snapshot(), false, ports, List.of(), 0);
            Fd mem = keep(MemFd.create("vportd-rehearsal"));
            MemFd.truncate(mem.fd(), MEMORY);
            MemFd.addSeals(mem.fd(), MemFd.F_SEAL_SHRINK);
            int kick = keep(EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC)).fd();
            int call = keep(EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC)).fd();
            List<Session.Replay> replay = new ArrayList<>();
            replay.add(message(Request.SET_PROTOCOL_FEATURES, Codec.u64(Session.PROTOCOL_FEATURES_OFFERED)));
            replay.add(message(Request.SET_OWNER, new byte[0]));
            replay.add(message(Request.SET_FEATURES, Codec.u64(ConsoleDevice.FEATURES)));
            replay.add(message(Request.SET_MEM_TABLE, Codec.memTable(List.of(new Codec.MemRegion(0, MEMORY, USER, 0))), mem.fd()));
            for (int q = 0; q < 2 * (PORTS + 1); q++) {
                long ring = USER + q * 0x4000L;
                replay.add(message(Request.SET_VRING_NUM, Codec.vringState(q, 64)));
                replay.add(message(Request.SET_VRING_BASE, Codec.vringState(q, 0)));
                replay.add(message(Request.SET_VRING_ADDR, Codec.vringAddr(new Codec.VringAddr(q, 0, ring, ring + 0x2000, ring + 0x1000, 0))));
                replay.add(message(Request.SET_VRING_CALL, Codec.u64(q), call));
                replay.add(message(Request.SET_VRING_ENABLE, Codec.vringState(q, 1)));
                replay.add(message(Request.SET_VRING_KICK, Codec.u64(q), kick));
            }
            Fd[] vhost = UnixSockets.pair(); // [0] stands in for the listener, [1] for the connection
            Fd[] handover = UnixSockets.pair();
            keep(vhost[0]);
            keep(vhost[1]);
            keep(handover[0]);
            keep(handover[1]);
            return new HandoverState.Daemon(socketPath, null, null, false, handover[0].fd(), vhost[0].fd(), vhost[1].fd(),
                    replay, snapshot, java.util.Map.of("rehearsal", 1L));
        }

        HandoverState.Encoded state() throws Exception {
            return HandoverState.encode(daemon(SOCKET.toString()));
        }

        /** A daemon of {@link #DEVICES} such devices, as a {@code --config} daemon's record lists them. */
        HandoverState.Encoded devicesState() throws Exception {
            List<HandoverState.Named> devices = new ArrayList<>();
            int listener = -1;
            for (int i = 0; i < DEVICES; i++) {
                HandoverState.Daemon d = daemon("/nonexistent/vportd-rehearsal-" + i + ".sock");
                listener = d.handoverListenerFd();
                devices.add(new HandoverState.Named("rehearsal-" + i, new HandoverState.Daemon(d.socketPath(), null, null,
                        false, -1, d.vhostListenerFd(), d.vhostConnectionFd(), d.replay(), d.device(), d.counters())));
            }
            return HandoverState.encode(new HandoverState.Daemons(null, null, DEVICES_HANDOVER_SOCKET.toString(), listener,
                    devices, java.util.Map.of("rehearsal", 1L)));
        }

        private static Session.Replay message(Request r, byte[] payload, int... fds) {
            return new Session.Replay(r.code, payload, fds);
        }

        @Override
        public void close() {
            fds.forEach(Fd::closeQuietly);
            if (logDir != null) { // a writer may still hold a file open: removing its name is enough
                try (java.util.stream.Stream<Path> files = java.nio.file.Files.list(logDir)) {
                    files.forEach(f -> f.toFile().delete());
                } catch (java.io.IOException | RuntimeException e) {
                    // best effort
                }
                logDir.toFile().delete();
            }
        }
    }

    /** A sample record as the taking side received it: the decoded daemon and the descriptors (the caller's). */
    record Carried(HandoverState.Daemon daemon, List<Fd> fds) {
    }

    /**
     * Sends {@code e} over a socket pair with the running daemon's {@link HandoverServer#sendState}
     * and receives it with the taking side's {@link TakeOver#receive}: the same code a hand-over
     * runs. The received descriptors are the caller's (closed here if receiving fails).
     */
    private static Carried carry(HandoverState.Encoded e) throws Exception {
        Fd[] pair = UnixSockets.pair();
        try (HandoverLink out = new HandoverLink(pair[0]); TakeOver in = new TakeOver(new HandoverLink(pair[1]))) {
            HandoverServer.sendState(out, e, 0);
            try {
                return new Carried(in.receive(), in.received());
            } catch (Exception | LinkageError ex) {
                in.received().forEach(Fd::closeQuietly);
                throw ex;
            }
        }
    }

    static void closeAll(List<Fd> fds) {
        fds.forEach(Fd::closeQuietly);
    }
}
