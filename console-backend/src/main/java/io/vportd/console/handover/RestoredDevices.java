package io.vportd.console.handover;

import io.vportd.console.control.PortConfig;
import io.vportd.console.device.ConsoleDevice;
import io.vportd.console.device.DeviceSnapshot;
import io.vportd.sys.Fd;
import io.vportd.vhost.VhostUserServer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A daemon of several devices rebuilt in the new process from a hand-over ({@code --take-over
 * --config}): every device (data planes frozen until the running daemon lets go) with its
 * vhost-user server and replayed session, and what the rest of the daemon needs.
 *
 * @param apiSocket        the management socket the running daemon served, or null
 * @param metricsListen    its metrics listener as given, or null
 * @param handoverSocket   where it listened for the hand-over
 * @param handoverListener that listening socket (this process listens on it from now on)
 * @param devices          every device, in the order the running daemon started them
 * @param counters         the process's own counters (each device carries its own)
 * @param pausedAtNanos    when the guests' pause began (the first ring stopped)
 */
public record RestoredDevices(Path apiSocket, String metricsListen, Path handoverSocket, Fd handoverListener,
                              List<Device> devices, Map<String, Long> counters, long pausedAtNanos,
                              long receivedAtNanos, long builtAtNanos) {

    /**
     * One device rebuilt.
     *
     * @param id                  its id
     * @param socketPath          its vhost-user socket
     * @param maxPorts            its max_nr_ports
     * @param ports               its ports now (those added at run time too)
     * @param allowUnsealedMemory as the running daemon had it
     * @param device              the device, frozen until {@link io.vportd.console.device.DataPlane#thaw}
     * @param vhost               its vhost-user server, session replayed, not started
     * @param counters            its counters in the running daemon
     */
    public record Device(String id, Path socketPath, int maxPorts, List<PortConfig> ports, boolean allowUnsealedMemory,
                         ConsoleDevice device, VhostUserServer vhost, Map<String, Long> counters) {
        /**
         * Serves from here on (after the running daemon's {@code go}): the data plane thawed, the
         * vhost-user server started. The rehearsal's rounds end through here too.
         */
        public void resume() {
            device.dataPlane().thaw();
            vhost.start();
        }
    }

    /** Makes one device from its snapshot (on the daemon's event loops, with its log context). */
    @FunctionalInterface
    public interface Builder {
        ConsoleDevice build(String id, DeviceSnapshot snapshot) throws IOException;
    }

    /**
     * Receives the running daemon's state over {@code link} and rebuilds every device with
     * {@code builder}. On failure the running daemon is told why (it resumes every device) and the
     * exception says what went wrong, naming the device; nothing shared with the running daemon is
     * closed (the caller must exit without cleaning up).
     */
    public static RestoredDevices from(TakeOver link, Path handoverSocket, Builder builder) throws IOException {
        HandoverState.Daemons d = link.receiveDevices();
        long received = System.nanoTime();
        String where = "";
        try {
            if (d.handoverSocket() != null && !Path.of(d.handoverSocket()).equals(handoverSocket)) {
                throw new IOException("the daemon listens for hand-overs on " + d.handoverSocket() + ", not "
                        + handoverSocket);
            }
            List<Device> devices = new ArrayList<>(d.devices().size());
            long frozen = 0;
            for (HandoverState.Named n : d.devices()) {
                where = "device " + n.id() + ": ";
                HandoverState.Daemon one = n.device();
                ConsoleDevice device = builder.build(n.id(), one.device());
                VhostUserServer vhost = DeferredStarts.replayInto(device, Path.of(one.socketPath()), one, false);
                devices.add(new Device(n.id(), Path.of(one.socketPath()), one.device().maxPorts(),
                        one.device().ports().stream().map(DeviceSnapshot.Port::config).toList(),
                        one.allowUnsealedMemory(), device, vhost, one.counters()));
                long at = one.device().frozenAtNanos();
                frozen = frozen == 0 || at - frozen < 0 ? at : frozen;
            }
            where = "";
            long built = System.nanoTime();
            return new RestoredDevices(d.apiSocket() == null ? null : Path.of(d.apiSocket()), d.metricsListen(),
                    handoverSocket, Fd.adopt(d.handoverListenerFd()), devices, d.counters(),
                    frozen == 0 ? received : Restored.pauseStart(link.ringsStoppedAtNanos(), frozen), received, built);
        } catch (IOException | RuntimeException e) {
            String why = where + e.getMessage();
            link.refuse(why);
            throw new IOException(why, e);
        }
    }

    /** How many ports in all. */
    public int portCount() {
        return devices.stream().mapToInt(x -> x.ports().size()).sum();
    }

    /** Logs where the rebuilding side's part of the pause went (once every device serves). */
    public void logPhases() {
        System.getLogger("vportd.handover").log(System.Logger.Level.INFO,
                "hand-over: state received {0} ms after the pause began, {1} device(s) rebuilt and replayed in {2} ms",
                HandoverServer.ms(receivedAtNanos - pausedAtNanos), devices.size(),
                HandoverServer.ms(builtAtNanos - receivedAtNanos));
    }
}
