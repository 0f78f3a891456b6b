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
import io.vportd.sys.Io;
import io.vportd.sys.MemFd;
import io.vportd.sys.UnixSockets;
import io.vportd.vhost.Codec;
import io.vportd.vhost.Request;
import io.vportd.vhost.Session;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs the taking side of a hand-over a few times on throw-away devices before the real one, so
 * that the running daemon's pause does not include this JVM loading, linking and interpreting
 * the code for the first time (in a cold JVM that was most of the pause). Each round decodes a
 * state record of {@link #PORTS} ports (a console and socket ports with a connected client, socket
 * pairs standing in), builds a device from it, replays a session over a sealed memfd of its own
 * with every ring started, then stops and closes everything. Nothing outside this process is
 * touched.
 */
final class Rehearsal {

    private static final System.Logger LOG = System.getLogger("vportd.handover");
    /** The default device size: rounds this big make the per-port and per-ring code compiled. */
    static final int PORTS = 31;
    static final int ROUNDS = 10;

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
        LOG.log(System.Logger.Level.DEBUG, "hand-over rehearsal took {0} ms", (System.nanoTime() - t0) / 1_000_000);
    }

    private static void rehearse() throws Exception {
        ControlMachine machine = new ControlMachine(PORTS, ControlListener.NONE);
        List<Fd> standIns = new ArrayList<>();
        List<DeviceSnapshot.Port> ports = new ArrayList<>();
        for (int id = 0; id < PORTS; id++) {
            PortConfig c;
            Handed h = new Handed();
            if (id == 0) {
                c = new PortConfig(0, null, true, 80, 24, null, new EndpointSpec.Null());
            } else {
                c = new PortConfig(id, "rehearsal." + id, false, 0, 0, null,
                        new EndpointSpec.UnixSocket(Path.of("/nonexistent/rehearsal-" + id + ".sock")));
                Fd[] pair = UnixSockets.pair(); // stands in for the listener and the connected client
                standIns.add(pair[0]);
                standIns.add(pair[1]);
                h.fd("listener", pair[0].fd()).fd("peer", pair[1].fd());
            }
            machine.addPort(c);
            ports.add(new DeviceSnapshot.Port(c, true, 0, 0, 0, new byte[0], 0, h, new long[] {1}, new byte[] {'x'}));
        }
        DeviceSnapshot snapshot = new DeviceSnapshot(PORTS, machine.snapshot(), false, ports, List.of(), 0);
        HandoverState.Encoded e = HandoverState.encode(new HandoverState.Daemon("/nonexistent/vportd.sock", null, null,
                false, -1, -1, -1, List.of(), snapshot, java.util.Map.of("rehearsal", 1L)));
        int[] dups = new int[e.fds().length]; // the device takes these over as a real hand-over's
        for (int i = 0; i < dups.length; i++) {
            dups[i] = Io.dup(e.fds()[i]).fd();
        }
        standIns.forEach(Fd::closeQuietly);
        HandoverState.Daemon d = HandoverState.decode(HandoverState.parse(e.json()), dups);
        long size = 1 << 20;
        try (ConsoleDevice device = new ConsoleDevice(d.device(), ConsoleDevice::adoptEndpoint,
                io.vportd.console.device.PortLogContext.DEFAULT);
             Fd mem = MemFd.create("vportd-rehearsal");
             Fd kick = EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC);
             Fd call = EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC)) {
            MemFd.truncate(mem.fd(), size);
            MemFd.addSeals(mem.fd(), MemFd.F_SEAL_SHRINK);
            long user = 0x7000_0000_0000L;
            DeferredStarts backend = new DeferredStarts(device);
            Session session = new Session(backend, reply -> { }, new io.vportd.vhost.VhostStats(), false);
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
            backend.flush();
            device.dataPlane().thaw();
            session.suspendForHandover();
            device.dataPlane().prepareHandover(1000);
            device.dataPlane().freezeForHandover();
            session.close();
        }
    }

    private static void send(Session s, Request r, byte[] payload, int... fds) throws Exception {
        Fd[] owned = new Fd[fds.length];
        for (int i = 0; i < fds.length; i++) {
            owned[i] = Io.dup(fds[i]);
        }
        s.handle(new Session.Message(new Codec.Header(r.code, Codec.VERSION, payload.length), payload, owned));
    }
}
