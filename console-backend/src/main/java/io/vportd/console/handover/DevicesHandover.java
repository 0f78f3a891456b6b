package io.vportd.console.handover;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vportd.console.device.DataPlane;
import io.vportd.console.device.DeviceSnapshot;
import io.vportd.sys.Fd;
import io.vportd.vhost.VhostUserServer;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The running side of a live hand-over of a daemon of several devices ({@code --config}): every
 * device goes to the new process at once, with one pause. It listens on the daemon's hand-over
 * socket (mode 0600; by default {@code API-SOCKET.handover}). A new vportd started with
 * {@code --take-over --config} connects; this side then holds the table of devices (none added or
 * removed meanwhile), stops every device's vhost-user server at a message boundary, lets every
 * port's log and endpoint helpers come to rest, freezes every data plane, and sends one state
 * record listing every device with all their descriptors. When the new process answers
 * {@code ready} it is told {@code go} and this process exits at once. If any device cannot be
 * handed over (a stdio endpoint, a server that does not come to a boundary), or the new process
 * refuses, fails or goes silent before {@code ready}, every device resumes as it was and the
 * reason, naming the device, is logged and sent back.
 */
public final class DevicesHandover implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("vportd.handover");

    /**
     * One device as the hand-over sees it.
     *
     * @param id                  the device's id
     * @param socketPath          its vhost-user socket
     * @param allowUnsealedMemory as configured
     * @param vhost               its vhost-user server
     * @param dataPlane           its data plane
     */
    public record Unit(String id, Path socketPath, boolean allowUnsealedMemory, VhostUserServer vhost,
                       DataPlane dataPlane) {
    }

    /** The daemon whose devices go: its table is held still for the hand-over. */
    public interface Daemon {
        /**
         * Holds the table still (no device added or removed until {@link #release}) and lists the
         * devices in the order they started.
         *
         * @throws IOException the table cannot be held now (a device is starting, say); nothing held
         */
        List<Unit> hold() throws IOException;

        /** The hand-over did not happen: devices may be added and removed again. */
        void release();

        /** The process's own counters (the devices' are each device's), carried to the next process. */
        Map<String, Long> counters();
    }

    /**
     * What the running daemon is made of.
     *
     * @param handoverSocket where to listen for a new process
     * @param apiSocket      the management socket, or null
     * @param metricsListen  the metrics listener as given, or null
     * @param daemon         its devices
     * @param exit           run once the new process serves (the daemon exits without cleaning up)
     */
    public record Context(Path handoverSocket, Path apiSocket, String metricsListen, Daemon daemon, Runnable exit) {
    }

    private final Context context;
    private final HandoverSocket socket;
    private final HandoverStats stats = new HandoverStats();

    private DevicesHandover(Context context, HandoverSocket socket) {
        this.context = context;
        this.socket = socket;
        socket.start(this::serve);
    }

    /** Binds the hand-over socket (replacing a stale socket file only) and starts listening. */
    public static DevicesHandover start(Context context) throws IOException {
        return new DevicesHandover(context, HandoverSocket.listen(context.handoverSocket()));
    }

    /** Listens on the hand-over socket the previous process handed over. */
    public static DevicesHandover adopt(Context context, Fd listener) {
        return new DevicesHandover(context, HandoverSocket.adopt(context.handoverSocket(), listener));
    }

    public Path path() {
        return context.handoverSocket();
    }

    public long failedHandovers() {
        return stats.failures();
    }

    /** This server's counters, to register with the metric registry. */
    public HandoverStats stats() {
        return stats;
    }

    /** A device on its way out: what has been stopped of it so far. */
    private static final class Going {
        final Unit unit;
        VhostUserServer.Suspension suspension;
        boolean prepared;
        DeviceSnapshot snapshot;

        Going(Unit unit) {
            this.unit = unit;
        }
    }

    private void serve(HandoverLink link) {
        ObjectNode request = HandoverServer.takeOverRequest(link, stats, socket);
        if (request == null) {
            return;
        }
        int version = request.path("version").asInt(HandoverState.DEVICES_VERSION);
        if (version != HandoverState.DEVICES_VERSION) {
            refuse(link, "this vportd serves several devices (--config) and hands over state version "
                    + HandoverState.DEVICES_VERSION + "; the new process asked for version " + version
                    + " (take it over with --take-over --config FILE)");
            return;
        }
        LOG.log(Level.INFO, "hand-over: process {0} asks to take over every device", request.path("pid").asText("?"));
        long warming = System.nanoTime();
        Rehearsal.warmDevicesSender();
        LOG.log(Level.DEBUG, "hand-over: sender warmed up in {0} ms", (System.nanoTime() - warming) / 1_000_000);
        List<Unit> units;
        try {
            units = context.daemon().hold();
        } catch (IOException e) {
            refuse(link, e.getMessage());
            return;
        }
        List<Going> going = new ArrayList<>(units.size());
        units.forEach(u -> going.add(new Going(u)));
        units.forEach(u -> u.dataPlane().metrics().counterValues()); // read again in the pause: not for the first time there
        long started = System.nanoTime();
        String why = stopAll(going);
        if (why != null) {
            resumeAll(going);
            context.daemon().release();
            refuse(link, why);
            return;
        }
        long frozen = System.nanoTime();
        try {
            List<HandoverState.Named> devices = new ArrayList<>(going.size());
            long ringsStopped = 0;
            for (Going g : going) {
                devices.add(new HandoverState.Named(g.unit.id(), new HandoverState.Daemon(g.unit.socketPath().toString(),
                        null, null, g.unit.allowUnsealedMemory(), -1, g.suspension.listenerFd(),
                        g.suspension.connectionFd(), g.suspension.replay(), g.snapshot,
                        g.unit.dataPlane().metrics().counterValues())));
                long at = g.suspension.stoppedAtNanos();
                ringsStopped = ringsStopped == 0 || at - ringsStopped < 0 ? at : ringsStopped;
            }
            HandoverState.Encoded state = HandoverState.encode(new HandoverState.Daemons(
                    context.apiSocket() == null ? null : context.apiSocket().toString(), context.metricsListen(),
                    context.handoverSocket().toString(), socket.fd(), devices, context.daemon().counters()));
            HandoverServer.sendState(link, state, ringsStopped);
            long sent = System.nanoTime();
            ObjectNode reply = HandoverServer.reply(link);
            boolean ready = HandoverServer.isReady(reply);
            if (ready) {
                HandoverServer.answer(link, "go", null);
            }
            // Logged once the new process has its answer (formatting inside the pause takes its CPU time).
            LOG.log(Level.INFO, "hand-over: {0} device(s) stopped and frozen in {1} ms, state ({2} bytes, {3} "
                    + "descriptors) sent in {4} ms", going.size(), HandoverServer.ms(frozen - started),
                    state.json().length, state.fds().length, HandoverServer.ms(sent - frozen));
            if (ready) {
                LOG.log(Level.INFO, "hand-over: the new process serves all {0} device(s) now ({1} ms after the request); "
                        + "exiting", going.size(), (System.nanoTime() - started) / 1_000_000);
                for (Going g : going) {
                    g.suspension.handedOver();
                }
                socket.handedOver();
                context.exit().run();
                return;
            }
            why = "the new process refused: " + reply.path("why").asText("no reason given");
        } catch (IOException | RuntimeException e) {
            why = "the new process failed: " + e.getMessage();
        }
        resumeAll(going);
        context.daemon().release();
        stats.failed.incrementAndGet();
        LOG.log(Level.WARNING, "hand-over did not happen ({0}); this process serves every device on", why);
    }

    /**
     * Stops every device: all vhost-user servers at a message boundary first (the guest's rings
     * stop together), then every port's helpers come to rest, then every data plane freezes. Null
     * when all are stopped, else why not, naming the device (the caller resumes them all).
     */
    private static String stopAll(List<Going> going) {
        for (Going g : going) {
            try {
                g.suspension = g.unit.vhost().suspend(HandoverServer.SUSPEND_TIMEOUT);
            } catch (IOException | RuntimeException e) {
                return "device " + g.unit.id() + ": cannot stop the vhost-user session: " + e.getMessage();
            }
        }
        for (Going g : going) {
            try {
                g.unit.dataPlane().prepareHandover(HandoverServer.PREPARE_TIMEOUT.toMillis());
                g.prepared = true;
            } catch (IOException | RuntimeException e) {
                return "device " + g.unit.id() + ": " + e.getMessage();
            }
        }
        for (Going g : going) {
            try {
                g.snapshot = g.unit.dataPlane().freezeForHandover();
            } catch (IOException | RuntimeException e) {
                return "device " + g.unit.id() + ": " + e.getMessage();
            }
        }
        return null;
    }

    /** Every device as it was: data planes thawed (or their ports' helpers released), servers resumed. */
    private static void resumeAll(List<Going> going) {
        for (Going g : going) {
            try {
                if (g.prepared) {
                    g.unit.dataPlane().abandonHandover();
                }
            } catch (RuntimeException e) {
                LOG.log(Level.ERROR, "device {0}: cannot thaw its data plane after the hand-over: {1}", g.unit.id(),
                        e.getMessage());
            }
            if (g.suspension != null) {
                g.suspension.resume();
            }
        }
    }

    private void refuse(HandoverLink link, String why) {
        stats.failed.incrementAndGet();
        LOG.log(Level.WARNING, "hand-over refused: {0}; this process serves every device on", why);
        HandoverServer.answer(link, "refused", why);
    }

    /** Stops listening and removes the socket file (an orderly shutdown, not a hand-over). */
    @Override
    public void close() {
        socket.close();
    }
}
