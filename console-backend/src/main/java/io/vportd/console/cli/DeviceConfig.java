package io.vportd.console.cli;

import io.vportd.console.control.PortConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * One device of a daemon that serves several ({@code vportd --config FILE}, or {@code add-device}
 * on the management API): its own id, vhost-user socket, max ports and ports.
 *
 * @param id                  the device's name in the API, metrics, events and logs
 * @param socketPath          the vhost-user socket this device's QEMU connects to
 * @param maxPorts            max_nr_ports, 1..511
 * @param ports               the ports, sorted by id (immutable)
 * @param allowUnsealedMemory accept guest memory files not sealed against shrinking
 */
public record DeviceConfig(String id, Path socketPath, int maxPorts, List<PortConfig> ports,
                           boolean allowUnsealedMemory) {

    /** Ids are short and safe in a log line, a metric label and a file name. */
    private static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");

    public DeviceConfig {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(socketPath, "socketPath");
        checkId(id);
        if (maxPorts < 1 || maxPorts > DaemonConfig.MAX_MAX_PORTS) {
            throw new IllegalArgumentException("max-ports must be 1.." + DaemonConfig.MAX_MAX_PORTS
                    + " (QEMU allows at most 1024 queues, i.e. 511 ports), got " + maxPorts);
        }
        List<PortConfig> sorted = new ArrayList<>(ports == null ? List.of() : ports);
        sorted.sort(Comparator.comparingInt(PortConfig::id));
        ports = List.copyOf(sorted);
    }

    /** Refuses an id that is not 1..64 characters of letters, digits, '.', '_' or '-' (not first). */
    public static void checkId(String id) {
        if (id == null || !ID.matcher(id).matches()) {
            throw new IllegalArgumentException("a device id is 1 to 64 letters, digits, '.', '_' or '-', starting "
                    + "with a letter or digit; got " + (id == null ? "nothing" : "'" + id + "'"));
        }
    }

    /** Number of virtqueues: 2 * (maxPorts + 1). */
    public int queueCount() {
        return 2 * (maxPorts + 1);
    }

    /**
     * Checks this device against itself and claims its paths and addresses in {@code claims}
     * (shared by every device of the process).
     */
    void claim(Claims claims) {
        String who = "device " + id;
        claims.path(socketPath, who + " socket");
        claims.ports(ports, maxPorts, "max-ports", who + ": ");
    }
}
