package io.vportd.console.cli;

import java.nio.file.Path;
import java.util.List;

/**
 * A daemon serving several devices, as {@code vportd --config FILE} describes it.
 *
 * @param source        the file it came from
 * @param apiSocket     the management API socket, or null
 * @param metricsListen where to serve metrics, or null
 * @param logLevel      the level to log at
 * @param devices       the devices, in file order (ids and every path distinct)
 * @param eventLoops    how many threads run the devices' data planes (event-loops; 0: one per CPU, at most 8)
 * @param handoverSocket the handover-socket key, or null (see {@link #handover})
 * @param takeOver      {@code --take-over}: take every device over from the daemon serving now (the
 *                      devices of the file are not used: the running daemon's come along)
 */
public record DevicesConfig(Path source, Path apiSocket, HostPort metricsListen, System.Logger.Level logLevel,
                            List<DeviceConfig> devices, int eventLoops, Path handoverSocket, boolean takeOver)
        implements Invocation {

    public DevicesConfig {
        devices = List.copyOf(devices);
    }

    /**
     * Where the daemon listens for a live hand-over of all its devices: the handover-socket key,
     * else {@code API-SOCKET.handover} beside the management socket; null (no live hand-over) when
     * the file has neither.
     */
    public Path handover() {
        if (handoverSocket != null) {
            return handoverSocket;
        }
        return apiSocket == null ? null : apiSocket.resolveSibling(apiSocket.getFileName() + ".handover");
    }

    /** The same, for {@code --take-over}. */
    public DevicesConfig withTakeOver() {
        return new DevicesConfig(source, apiSocket, metricsListen, logLevel, devices, eventLoops, handoverSocket, true);
    }
}
