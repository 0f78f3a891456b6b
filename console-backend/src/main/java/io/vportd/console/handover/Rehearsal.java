package io.vportd.console.handover;

import io.vportd.console.control.PortConfig;
import io.vportd.console.device.ConsoleDevice;
import io.vportd.console.device.DeviceSnapshot;
import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.endpoint.Handed;
import io.vportd.sys.EventFd;
import io.vportd.sys.Fd;
import io.vportd.sys.MemFd;
import io.vportd.vhost.Codec;
import io.vportd.vhost.Request;
import io.vportd.vhost.Session;
import java.util.List;

/**
 * Runs the taking side of a hand-over once on a throw-away device before the real one starts, so
 * that the running daemon's pause does not include this JVM loading and first running the code
 * (measured: about a second in a cold JVM, most of the pause). It decodes a state record, builds
 * a device from a snapshot, replays a session over a sealed memfd of its own and starts a ring,
 * then closes everything. Nothing outside this process is touched.
 */
final class Rehearsal {

    private static final System.Logger LOG = System.getLogger("vportd.handover");

    private Rehearsal() {
    }

    /** Best effort: a failure only means a longer pause, so it is logged and ignored. */
    static void run() {
        long t0 = System.nanoTime();
        try {
            rehearse();
        } catch (Exception | LinkageError e) {
            LOG.log(System.Logger.Level.WARNING, "hand-over rehearsal failed (the pause will be longer): {0}", e.toString());
        }
        LOG.log(System.Logger.Level.DEBUG, "hand-over rehearsal took {0} ms", (System.nanoTime() - t0) / 1_000_000);
    }

    private static void rehearse() throws Exception {
        io.vportd.console.control.ControlMachine machine =
                new io.vportd.console.control.ControlMachine(2, io.vportd.console.control.ControlListener.NONE);
        PortConfig console = new PortConfig(0, null, true, 80, 24, null, new EndpointSpec.Null());
        // A socket port with a "listener" and a connected "client": a socket pair stands in for both.
        PortConfig socket = new PortConfig(1, "rehearsal", false, 0, 0, null,
                new EndpointSpec.UnixSocket(java.nio.file.Path.of("/nonexistent/rehearsal.sock")));
        machine.addPort(console);
        machine.addPort(socket);
        Fd[] pair = io.vportd.sys.UnixSockets.pair();
        DeviceSnapshot snapshot = new DeviceSnapshot(2, machine.snapshot(), false,
                List.of(new DeviceSnapshot.Port(console, true, 0, 0, 0, new byte[0], 0, new Handed(), new long[] {1}),
                        new DeviceSnapshot.Port(socket, true, 0, 0, 0, new byte[0], 0,
                                new Handed().fd("listener", pair[0].fd()).fd("peer", pair[1].fd()), new long[] {1})),
                List.of(), 0);
        HandoverState.Encoded e = HandoverState.encode(new HandoverState.Daemon("/nonexistent/vportd.sock", null, null,
                false, -1, -1, -1, List.of(), snapshot, java.util.Map.of("rehearsal", 1L)));
        int[] dups = new int[e.fds().length]; // the device takes these over as a real hand-over's
        for (int i = 0; i < dups.length; i++) {
            dups[i] = io.vportd.sys.Io.dup(e.fds()[i]).fd();
        }
        pair[0].closeQuietly();
        pair[1].closeQuietly();
        HandoverState.Daemon d = HandoverState.decode(HandoverState.parse(e.json()), dups);
        long size = 1 << 20;
        try (ConsoleDevice device = new ConsoleDevice(d.device(), ConsoleDevice::adoptEndpoint);
             Fd mem = MemFd.create("vportd-rehearsal");
             Fd kick = EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC);
             Fd call = EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC)) {
            MemFd.truncate(mem.fd(), size);
            MemFd.addSeals(mem.fd(), MemFd.F_SEAL_SHRINK);
            long user = 0x7000_0000_0000L;
            Session session = new Session(device, reply -> { }, new io.vportd.vhost.VhostStats(), false);
            send(session, Request.SET_PROTOCOL_FEATURES, Codec.u64(Session.PROTOCOL_FEATURES_OFFERED));
            send(session, Request.SET_OWNER, new byte[0]);
            send(session, Request.SET_FEATURES, Codec.u64(device.deviceFeatures()));
            send(session, Request.SET_MEM_TABLE, Codec.memTable(List.of(new Codec.MemRegion(0, size, user, 0))), mem.fd());
            for (int q = 0; q < device.queueCount(); q++) {
                long ring = user + q * 0x4000L;
                send(session, Request.SET_VRING_NUM, Codec.vringState(q, 64));
                send(session, Request.SET_VRING_BASE, Codec.vringState(q, 0));
                send(session, Request.SET_VRING_ADDR, Codec.vringAddr(new Codec.VringAddr(q, 0, ring, ring + 0x2000, ring + 0x1000, 0)));
                send(session, Request.SET_VRING_CALL, Codec.u64(q), call.fd());
                send(session, Request.SET_VRING_ENABLE, Codec.vringState(q, 1));
                send(session, Request.SET_VRING_KICK, Codec.u64(q), kick.fd());
            }
            device.dataPlane().thaw();
            session.suspendForHandover();
            device.dataPlane().freezeForHandover();
            session.close();
        }
    }

    private static void send(Session s, Request r, byte[] payload, int... fds) throws Exception {
        Fd[] owned = new Fd[fds.length];
        for (int i = 0; i < fds.length; i++) {
            owned[i] = io.vportd.sys.Io.dup(fds[i]);
        }
        s.handle(new Session.Message(new Codec.Header(r.code, Codec.VERSION, payload.length), payload, owned));
    }
}
