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
    /** Rounds run again once the compiler has gone quiet after the first {@link #ROUNDS} (see {@link #warm}). */
    static final int SETTLE_ROUNDS = 3;
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
        io.vportd.sys.Io.primeInvokers();
        long waited = warm(Rehearsal::rehearse, true, TAKER_COMPILER_WAIT_MILLIS, System.Logger.Level.WARNING);
        LOG.log(System.Logger.Level.DEBUG, "hand-over rehearsal took {0} ms, of which {1} ms waiting for the compiler",
                (System.nanoTime() - t0) / 1_000_000, waited);
    }

    /** One round of a warm-up. */
    @FunctionalInterface
    private interface Round {
        void run() throws Exception;
    }

    /**
     * {@link #ROUNDS} rounds, then a wait for the compiler ({@link CompilerQuiet}), then {@link
     * #SETTLE_ROUNDS} more and a second wait; with {@code collect}, a garbage collection before
     * each wait (the process serves nothing yet). The second pass is there because the compiler
     * raises its thresholds while its queue is long: methods the first rounds made nearly hot
     * (the session's message dispatch among them) crossed them only inside the pause, and were
     * compiled there, on one of the host's CPUs. After the first wait the queue is empty and a
     * few rounds push them over. Best effort: a failing round is logged at {@code failure} and
     * ends its pass. Returns the milliseconds spent waiting for the compiler.
     */
    private static long warm(Round round, boolean collect, long maxWaitMillis, System.Logger.Level failure) {
        long waited = 0;
        for (int rounds : new int[] {ROUNDS, SETTLE_ROUNDS}) {
            try {
                for (int i = 0; i < rounds; i++) {
                    round.run();
                }
            } catch (Exception | LinkageError e) {
                LOG.log(failure, "hand-over warm-up failed (the pause will be longer): {0}", e.toString());
            }
            if (collect) {
                System.gc(); // the rounds' garbage goes now, not in a collection during the pause
            }
            waited += CompilerQuiet.await(maxWaitMillis);
        }
        return waited;
    }

    /**
     * The sending side's warm-up, run by the running daemon's hand-over thread when a new process
     * asks to take over, before anything stops: full-size state records encoded and sent over a
     * socket pair (see {@link #carry}), so the pause does not include this code running cold.
     */
    static void warmSender() {
        io.vportd.sys.Io.primeInvokers();
        HandoverServer.ms(1_234_567); // formats the phase line's figures, written as the new process thaws
        warmStopping(); // first: its rounds give the records below the counter names a real device has
        warm(() -> closeAll(carriedSample().fds()), false, SENDER_COMPILER_WAIT_MILLIS, System.Logger.Level.DEBUG);
    }

    /**
     * {@link #run} for {@code --take-over --config}: {@link #ROUNDS} rounds of the taking path of a
     * daemon of several devices, each device built by {@code builder} (the taking daemon's own,
     * so on its event loops), replayed, started, suspended as for a hand-over and closed. Best
     * effort, as {@link #run}.
     */
    static void runDevices(RestoredDevices.Builder builder) {
        long t0 = System.nanoTime();
        io.vportd.sys.Io.primeInvokers();
        long waited = warm(() -> rehearseDevices(builder), true, TAKER_COMPILER_WAIT_MILLIS, System.Logger.Level.WARNING);
        LOG.log(System.Logger.Level.DEBUG, "hand-over rehearsal of {0} devices took {1} ms, of which {2} ms waiting for the "
                + "compiler", DEVICES, (System.nanoTime() - t0) / 1_000_000, waited);
    }

    /** The sending side's warm-up for a daemon of several devices (see {@link #warmSender}). */
    static void warmDevicesSender() {
        io.vportd.sys.Io.primeInvokers();
        HandoverServer.ms(1_234_567);
        warmStopping(); // first, as in warmSender
        warm(Rehearsal::carryDevicesSample, false, SENDER_COMPILER_WAIT_MILLIS, System.Logger.Level.DEBUG);
    }

    /** A sample record of several devices carried as {@link #carry} carries one; its descriptors closed. */
    private static void carryDevicesSample() throws Exception {
        try (Props props = new Props()) {
            overPair(props.devicesState(), (out, in) -> {
                try {
                    in.receiveDevices();
                    answerReady(out, in);
                } finally {
                    closeAll(in.received());
                }
                return null;
            });
        }
    }

    /** How the taking side of a rehearsal takes a record: the very call a real hand-over makes. */
    @FunctionalInterface
    private interface Take<T> {
        T take() throws Exception;
    }

    /** Closes what a rehearsal took when its exchange failed. */
    @FunctionalInterface
    private interface Discard<T> {
        void discard(T taken) throws Exception;
    }

    /**
     * Takes the record ({@code take}), then plays the end of the exchange ({@link #answerReady}).
     * A failed take closes what was received; a failed exchange closes what was taken ({@code discard}).
     */
    private static <T> T takeAndAnswer(HandoverLink running, TakeOver taking, Take<T> take, Discard<T> discard)
            throws Exception {
        T taken;
        try {
            taken = take.take();
        } catch (Exception | LinkageError ex) {
            closeAll(taking.received());
            throw ex;
        }
        try {
            answerReady(running, taking);
        } catch (Exception | LinkageError ex) {
            discard.discard(taken);
            throw ex;
        }
        return taken;
    }

    /** What the taking side of a rehearsal does with a record sent to it over a socket pair. */
    @FunctionalInterface
    private interface Taking<T> {
        T take(HandoverLink running, TakeOver taking) throws Exception;
    }

    /**
     * Sends {@code e} over a socket pair with the running daemon's {@link HandoverServer#sendState}
     * (stamped with the time, as a real record is) and lets {@code taking} take it on the other end.
     */
    private static <T> T overPair(HandoverState.Encoded e, Taking<T> taking) throws Exception {
        Fd[] pair = UnixSockets.pair();
        try (HandoverLink out = new HandoverLink(pair[0]); TakeOver in = new TakeOver(new HandoverLink(pair[1]))) {
            HandoverServer.sendState(out, e, System.nanoTime());
            return taking.take(out, in);
        }
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
            r = overPair(props.devicesState(), (out, in) -> takeAndAnswer(out, in,
                    () -> RestoredDevices.from(in, DEVICES_HANDOVER_SOCKET, builder), taken -> {
                        taken.handoverListener().closeQuietly();
                        for (RestoredDevices.Device d : taken.devices()) {
                            d.device().close();
                            d.vhost().close();
                        }
                    }));
        }
        r.handoverListener().closeQuietly();
        for (RestoredDevices.Device d : r.devices()) {
            try (ConsoleDevice device = d.device()) {
                d.resume();
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
            r = overPair(props.state(), (out, in) -> takeAndAnswer(out, in,
                    () -> Restored.from(in, SOCKET, io.vportd.console.device.PortLogContext.DEFAULT), taken -> {
                        taken.device().close();
                        taken.vhost().close();
                        taken.handoverListener().closeQuietly();
                    }));
        }
        r.handoverListener().closeQuietly();
        sampleCounters = r.device().dataPlane().metrics().counterValues();
        try (ConsoleDevice device = r.device()) {
            io.vportd.vhost.VhostUserServer vhost = r.vhost();
            r.resume(0);
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
        private static final java.util.concurrent.atomic.AtomicInteger ROUNDS_MADE = new java.util.concurrent.atomic.AtomicInteger();
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
            // Each round's record is laid out a little differently (one port name grows by a few
            // bytes a round), so the encoder's buffer fills at a different kind of token in each:
            // with the same layout every round it filled at the same one, and a real record that
            // filled it at a field name sent the encoder's compiled code back to the interpreter.
            String shifted = "x".repeat(7 * (ROUNDS_MADE.getAndIncrement() % 9));
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
                    c = new PortConfig(id, "rehearsal." + id + (id == 2 ? shifted : ""), false, 0, 0, null,
                            new EndpointSpec.UnixSocket(Path.of("/nonexistent/rehearsal-" + id + ".sock")));
                    Fd[] pair = UnixSockets.pair();
                    h.fd("listener", keep(pair[0]).fd()).fd("peer", keep(pair[1]).fd());
                }
                machine.addPort(c);
                long[] counters = new long[10];
                for (int k = 0; k < counters.length; k++) {
                    counters[k] = bigOrSmall(id + k);
                }
                ports.add(new DeviceSnapshot.Port(c, true, 0, 0, 0, new byte[0], 0, h, counters, new byte[] {'x'}));
            }
            DeviceSnapshot snapshot = new DeviceSnapshot(PORTS, machine.snapshot(), false, ports, List.of(), System.nanoTime());
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
                    replay, snapshot, sampleCounters());
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
        return overPair(e, (out, in) -> {
            try {
                Carried c = new Carried(in.receive(), in.received());
                answerReady(out, in);
                return c;
            } catch (Exception | LinkageError ex) {
                in.received().forEach(Fd::closeQuietly);
                throw ex;
            }
        });
    }

    /**
     * The end of a hand-over's exchange, both sides of it over one socket pair: the taking side's
     * {@link TakeOver#ready} and the running side's reading of it and {@code go} (sent ahead, since
     * one thread plays both), after the request the running side has not read here. Both parse these frames inside the pause: a frame parsed for the first
     * time there took the JSON parser out of compiled code.
     */
    private static void answerReady(HandoverLink running, TakeOver taking) throws java.io.IOException {
        HandoverServer.answer(running, "go", null);
        taking.ready();
        // The taking side's request came first (the running daemon read it before anything stopped).
        if (!"take-over".equals(HandoverServer.reply(running).path("op").asText())
                || !HandoverServer.isReady(HandoverServer.reply(running))) {
            throw new java.io.IOException("the rehearsed exchange did not read its own ready");
        }
    }

    /**
     * Counter values as a running daemon's record carries them: the names a rehearsed device of
     * {@link #PORTS} ports registers (after the first round; a few made-up ones before it), with
     * values both small and beyond 32 bits, as a daemon that has run a while has. The parser's
     * compiled code takes a different branch for each kind of number and length of name: one
     * never seen in the rehearsal sent it back to the interpreter inside the pause.
     */
    private static volatile java.util.Map<String, Long> sampleCounters = java.util.Map.of(
            "vportd_rehearsal", 1L, "vportd_rehearsal_bytes_total\u0000port\u00001\u0000direction\u0000to_host", 5_000_000_000L);

    static java.util.Map<String, Long> sampleCounters() {
        java.util.Map<String, Long> out = new java.util.LinkedHashMap<>();
        int i = 0;
        for (String name : sampleCounters.keySet()) {
            out.put(name, bigOrSmall(i++));
        }
        return out;
    }

    /** 0, a small number, or one beyond 32 bits, in turn. */
    private static long bigOrSmall(int i) {
        return switch (i % 3) {
            case 0 -> 0;
            case 1 -> 1000 + i;
            default -> 5_000_000_000L + i;
        };
    }

    static void closeAll(List<Fd> fds) {
        fds.forEach(Fd::closeQuietly);
    }
}
