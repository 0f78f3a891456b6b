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
 */
public record DevicesConfig(Path source, Path apiSocket, HostPort metricsListen, System.Logger.Level logLevel,
                            List<DeviceConfig> devices, int eventLoops) implements Invocation {

    public DevicesConfig {
        devices = List.copyOf(devices);
    }
}
