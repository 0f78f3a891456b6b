package io.vportd.console.cli;

import io.vportd.console.control.PortConfig;
import io.vportd.console.endpoint.EndpointSpec;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What one daemon's configuration claims on the host: socket and file paths, TCP addresses, and
 * standard I/O. Two claims on one thing are refused with a message naming both claimants, so a
 * configuration that cannot work is refused before anything is created. One set of claims covers a
 * whole process (every device it serves).
 */
final class Claims {

    private final Map<Path, String> paths = new HashMap<>();
    private final Set<String> tcp = new HashSet<>();
    private String stdioPort;

    /** Claims {@code path} for {@code who}. */
    void path(Path path, String who) {
        Path key = path.toAbsolutePath().normalize();
        String other = paths.putIfAbsent(key, who);
        if (other != null) {
            throw new IllegalArgumentException(who + " and " + other + " use the same path " + path);
        }
    }

    /** Claims a TCP listen address (port 0, a free port, never clashes). */
    void tcp(HostPort address, String who) {
        if (address.port() != 0 && !tcp.add(address.toString())) {
            throw new IllegalArgumentException(who + ": TCP address " + address
                    + " is already used by another port or the metrics listener");
        }
    }

    /**
     * Checks one device's ports (sorted by id) against its max ports and each other, and claims
     * what their endpoints own. {@code maxPortsKey} names the setting in messages; {@code device}
     * prefixes them ("" for the only device).
     */
    void ports(List<PortConfig> ports, int maxPorts, String maxPortsKey, String device) {
        Map<Integer, PortConfig> ids = new HashMap<>();
        Map<String, Integer> names = new HashMap<>();
        for (PortConfig p : ports) {
            String who = device + "port " + p.id();
            if (p.id() >= maxPorts) {
                throw new IllegalArgumentException(who + ": nr must be below " + maxPortsKey + " " + maxPorts
                        + " (raise " + maxPortsKey + " or pick a smaller nr)");
            }
            if (ids.putIfAbsent(p.id(), p) != null) {
                throw new IllegalArgumentException(device + "port nr=" + p.id() + " is given twice");
            }
            if (p.name() != null) {
                Integer other = names.putIfAbsent(p.name(), p.id());
                if (other != null) {
                    throw new IllegalArgumentException(device + "ports " + other + " and " + p.id()
                            + " have the same name '" + p.name() + "'");
                }
            }
            EndpointSpec e = p.endpoint();
            if (e instanceof EndpointSpec.Stdio) {
                if (stdioPort != null) {
                    throw new IllegalArgumentException(stdioPort + " and " + who
                            + " both use stdio; at most one port may");
                }
                stdioPort = who;
            }
            if (e.ownedPath() != null) {
                path(e.ownedPath(), who + " (" + e.toSpec() + ")");
            }
            if (e instanceof EndpointSpec.Tcp t) {
                tcp(new HostPort(t.host(), t.port()), who);
            }
        }
    }
}
