package io.vportd.console.cli;

import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.control.PortConfig;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Everything the daemon needs from its command line, already cross-checked.
 *
 * @param socketPath    the vhost-user socket QEMU connects to
 * @param maxPorts      max_nr_ports of the device, 1..511
 * @param ports         the ports, sorted by id (immutable)
 * @param apiSocket     the management API socket, or null
 * @param metricsListen where to serve metrics, or null
 * @param logLevel      the level to log at
 * @param allowUnsealedMemory accept guest memory files not sealed against shrinking (--allow-unsealed-memory)
 * @param pollMicros    the data plane's adaptive poll window in µs, 0 off (--poll-us)
 */
public record DaemonConfig(Path socketPath, int maxPorts, List<PortConfig> ports, Path apiSocket,
                           HostPort metricsListen, System.Logger.Level logLevel, boolean allowUnsealedMemory,
                           int pollMicros) {

    /** With the default --poll-us. */
    public DaemonConfig(Path socketPath, int maxPorts, List<PortConfig> ports, Path apiSocket,
                        HostPort metricsListen, System.Logger.Level logLevel, boolean allowUnsealedMemory) {
        this(socketPath, maxPorts, ports, apiSocket, metricsListen, logLevel, allowUnsealedMemory, DEFAULT_POLL_MICROS);
    }

    /** Without --allow-unsealed-memory. */
    public DaemonConfig(Path socketPath, int maxPorts, List<PortConfig> ports, Path apiSocket,
                        HostPort metricsListen, System.Logger.Level logLevel) {
        this(socketPath, maxPorts, ports, apiSocket, metricsListen, logLevel, false);
    }

    public static final int DEFAULT_MAX_PORTS = 31;
    /**
     * --poll-us default: off. The window shortened the device-limit round trip, but in the guest
     * benchmark its spinning took CPU from the guest's vCPU thread on a shared host (issue 14,
     * docs/benchmarks-devlimit.md).
     */
    public static final int DEFAULT_POLL_MICROS = 0;
    /** Largest --poll-us. */
    public static final int MAX_POLL_MICROS = 1_000_000;
    /** QEMU caps a device at 1024 queues: 2 * (511 + 1). */
    public static final int MAX_MAX_PORTS = 511;

    /**
     * @throws IllegalArgumentException when the parts contradict each other (the message says how)
     */
    public DaemonConfig {
        Objects.requireNonNull(socketPath, "socketPath");
        Objects.requireNonNull(logLevel, "logLevel");
        if (maxPorts < 1 || maxPorts > MAX_MAX_PORTS) {
            throw new IllegalArgumentException("--max-ports must be 1.." + MAX_MAX_PORTS
                    + " (QEMU allows at most 1024 queues, i.e. 511 ports), got " + maxPorts);
        }
        List<PortConfig> sorted = new ArrayList<>(ports == null ? List.of() : ports);
        sorted.sort(Comparator.comparingInt(PortConfig::id));
        ports = List.copyOf(sorted);
        if (pollMicros < 0 || pollMicros > MAX_POLL_MICROS) {
            throw new IllegalArgumentException("--poll-us must be 0.." + MAX_POLL_MICROS + " (0 disables polling), got "
                    + pollMicros);
        }
        check(socketPath, maxPorts, ports, apiSocket, metricsListen);
    }

    /** Number of virtqueues the device has: 2 * (maxPorts + 1); QEMU's num_vqs must be at least this. */
    public int queueCount() {
        return 2 * (maxPorts + 1);
    }

    /**
     * Parses a command line (arguments after the program name).
     *
     * @throws UsageException for errors, and (informational, exit code 0) for --help / --version
     */
    public static DaemonConfig parse(String... args) throws UsageException {
        return VportdCommand.parse(args);
    }

    /** The full --help text. */
    public static String usage() {
        return VportdCommand.usage();
    }

    private static void check(Path socketPath, int maxPorts, List<PortConfig> ports, Path apiSocket,
                              HostPort metricsListen) {
        Map<Integer, PortConfig> ids = new HashMap<>();
        Map<String, Integer> names = new HashMap<>();
        Map<Path, String> paths = new HashMap<>();
        Set<String> tcp = new HashSet<>();
        claim(paths, socketPath, "--socket-path");
        if (apiSocket != null) {
            claim(paths, apiSocket, "--api-socket");
        }
        if (metricsListen != null && metricsListen.port() != 0) { // port 0: a free port, never a clash
            tcp.add(metricsListen.toString());
        }
        Integer stdioPort = null;
        for (PortConfig p : ports) {
            if (p.id() >= maxPorts) {
                throw new IllegalArgumentException("port " + p.id() + ": nr must be below --max-ports " + maxPorts
                        + " (raise --max-ports or pick a smaller nr)");
            }
            PortConfig twin = ids.putIfAbsent(p.id(), p);
            if (twin != null) {
                throw new IllegalArgumentException("port nr=" + p.id() + " is given twice");
            }
            if (p.name() != null) {
                Integer other = names.putIfAbsent(p.name(), p.id());
                if (other != null) {
                    throw new IllegalArgumentException("ports " + other + " and " + p.id() + " have the same name '"
                            + p.name() + "'");
                }
            }
            EndpointSpec e = p.endpoint();
            if (e instanceof EndpointSpec.Stdio) {
                if (stdioPort != null) {
                    throw new IllegalArgumentException("ports " + stdioPort + " and " + p.id()
                            + " both use stdio; at most one port may");
                }
                stdioPort = p.id();
            }
            if (e.ownedPath() != null) {
                claim(paths, e.ownedPath(), "port " + p.id() + " (" + e.toSpec() + ")");
            }
            if (e instanceof EndpointSpec.Tcp t && t.port() != 0) {
                String key = new HostPort(t.host(), t.port()).toString();
                if (!tcp.add(key)) {
                    throw new IllegalArgumentException("port " + p.id() + ": TCP address " + key
                            + " is already used by another port or --metrics-listen");
                }
            }
        }
    }

    private static void claim(Map<Path, String> paths, Path path, String who) {
        Path key = path.toAbsolutePath().normalize();
        String other = paths.putIfAbsent(key, who);
        if (other != null) {
            throw new IllegalArgumentException(who + " and " + other + " use the same path " + path);
        }
    }
}
