package io.vportd.console.handover;

import io.vportd.console.device.ConsoleDevice;
import io.vportd.sys.Fd;
import io.vportd.vhost.VhostUserServer;
import java.io.IOException;
import java.nio.file.Path;

/**
 * A daemon rebuilt in the new process from a hand-over: the device (data plane frozen until the
 * running daemon lets go), the vhost-user server with the frontend's session replayed (rings
 * started at the handed positions, but nothing moves while the data plane is frozen), and what
 * the rest of the daemon needs (API socket, metrics address, the hand-over listener).
 */
public record Restored(ConsoleDevice device, VhostUserServer vhost, Path apiSocket, String metricsListen,
                       boolean allowUnsealedMemory, Fd handoverListener, long frozenAtNanos, long pausedAtNanos, int portCount,
                       java.util.Map<String, Long> counters, long receivedAtNanos, long builtAtNanos,
                       long replayedAtNanos) {

    /**
     * Logs where the rebuilding side's part of the pause went, up to the running daemon's go
     * ({@code goAtNanos}) and serving ({@code servingAtNanos}). Called once the device serves:
     * formatting and the first log line of a fresh process are slow enough to lengthen the pause.
     */
    public void logPhases(long goAtNanos, long servingAtNanos) {
        System.getLogger("vportd.handover").log(System.Logger.Level.INFO,
                "hand-over: state received {0} ms after the freeze, device rebuilt in {1} ms, session replayed in {2} ms, "
                        + "the running daemon''s go {3} ms later, serving {4} ms after it",
                HandoverServer.ms(receivedAtNanos - frozenAtNanos), HandoverServer.ms(builtAtNanos - receivedAtNanos),
                HandoverServer.ms(replayedAtNanos - builtAtNanos), HandoverServer.ms(goAtNanos - replayedAtNanos),
                HandoverServer.ms(servingAtNanos - goAtNanos));
    }

    /**
     * Serves from here on (after the running daemon's {@code go}): this process's own poll window
     * set, the data plane thawed, the vhost-user server started. Each rehearsal round ends through
     * here as well, so none of it runs for the first time inside the pause.
     */
    public void resume(int pollMicros) {
        device.dataPlane().setPollMicros(pollMicros);
        device.dataPlane().thaw();
        vhost.start();
    }

    /** The guest's pause began when the running daemon stopped its rings (or, if it did not say, when it froze). */
    static long pauseStart(long ringsStoppedAtNanos, long frozenAtNanos) {
        return ringsStoppedAtNanos != 0 && ringsStoppedAtNanos - frozenAtNanos < 0 ? ringsStoppedAtNanos : frozenAtNanos;
    }

    /**
     * Receives the running daemon's state over {@code link} and rebuilds it. On failure the
     * running daemon is told why (it resumes) and the exception says what went wrong.
     */
    public static Restored from(TakeOver link, Path socketPath, io.vportd.console.device.PortLogContext logContext)
            throws IOException {
        HandoverState.Daemon d = link.receive();
        long received = System.nanoTime();
        try {
            if (!Path.of(d.socketPath()).equals(socketPath)) {
                throw new IOException("the daemon on the hand-over socket serves " + d.socketPath() + ", not " + socketPath);
            }
            ConsoleDevice device = new ConsoleDevice(d.device(), ConsoleDevice::adoptEndpoint, logContext);
            long built = System.nanoTime();
            VhostUserServer vhost = DeferredStarts.replayInto(device, socketPath, d, false);
            long replayed = System.nanoTime();
            return new Restored(device, vhost, d.apiSocket() == null ? null : Path.of(d.apiSocket()), d.metricsListen(),
                    d.allowUnsealedMemory(), Fd.adopt(d.handoverListenerFd()), d.device().frozenAtNanos(),
                    pauseStart(link.ringsStoppedAtNanos(), d.device().frozenAtNanos()),
                    d.device().ports().size(), d.counters(), received, built, replayed);
        } catch (IOException | RuntimeException e) {
            link.refuse(String.valueOf(e.getMessage()));
            throw e;
        }
    }
}
