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
 *
 * <p>A daemon of many devices keeps one set for its life: {@link #claimDevice} takes a device's
 * claims (all or none) and says what it took, {@link #release} gives them back when the device
 * goes. Not thread-safe: the owner locks.
 */
public final class Claims {

    private static final String STDIO = "\u0000stdio";

    private final Map<Path, String> paths = new HashMap<>();
    private final Set<String> tcp = new HashSet<>();
    private String stdioPort;
    /** What the claims in progress took (null: not recording). */
    private List<Object> taken;

    public Claims() {
    }

    /** Claims {@code path} for {@code who}. */
    public void path(Path path, String who) {
        Path key = path.toAbsolutePath().normalize();
        String other = paths.putIfAbsent(key, who);
        if (other != null) {
            throw new IllegalArgumentException(who + " and " + other + " use the same path " + path);
        }
        record(key);
    }

    /** Claims a TCP listen address (port 0, a free port, never clashes). */
    public void tcp(HostPort address, String who) {
        if (address.port() != 0) {
            if (!tcp.add(address.toString())) {
                throw new IllegalArgumentException(who + ": TCP address " + address
                        + " is already used by another port or the metrics listener");
            }
            record(address.toString());
        }
    }

    private void record(Object key) {
        if (taken != null) {
            taken.add(key);
        }
    }

    /**
     * Claims everything device {@code d} needs beside what is claimed already, or nothing (the
     * first clash is thrown). Returns what it took, for {@link #release}.
     */
    public List<Object> claimDevice(DeviceConfig d) {
        List<Object> mine = new java.util.ArrayList<>();
        taken = mine;
        try {
            d.claim(this);
            return mine;
        } catch (IllegalArgumentException e) {
            release(mine);
            throw e;
        } finally {
            taken = null;
        }
    }

    /** Gives back what {@link #claimDevice} took. */
    public void release(List<Object> claims) {
        for (Object k : claims) {
            if (k instanceof Path p) {
                paths.remove(p);
            } else if (k == STDIO) {
                stdioPort = null;
            } else {
                tcp.remove((String) k);
            }
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
                record(STDIO);
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
