package io.vportd.console.cli;

import io.vportd.console.control.PortConfig;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;

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
 * @param takeOver      take the device over from the vportd serving {@code socketPath} (--take-over):
 *                      ports, max ports and the API socket then come from that daemon
 * @param fdStore       keep systemd's file descriptor store ready for a crash, and recover from it at
 *                      start (--fd-store)
 * @param webListen     where to serve the web console (--web-listen), or null
 * @param webTokenFile  the web console's token file (--web-token-file), or null: a token is generated
 * @param pollMicros    the data plane's adaptive poll window in µs, 0 off (--poll-us)
 */
public record DaemonConfig(Path socketPath, int maxPorts, List<PortConfig> ports, Path apiSocket,
                           HostPort metricsListen, System.Logger.Level logLevel, boolean allowUnsealedMemory,
                           boolean takeOver, boolean fdStore, HostPort webListen, Path webTokenFile,
                           int pollMicros)
        implements Invocation {

    /** With the default --poll-us. */
    public DaemonConfig(Path socketPath, int maxPorts, List<PortConfig> ports, Path apiSocket,
                        HostPort metricsListen, System.Logger.Level logLevel, boolean allowUnsealedMemory,
                        boolean takeOver, boolean fdStore, HostPort webListen, Path webTokenFile) {
        this(socketPath, maxPorts, ports, apiSocket, metricsListen, logLevel, allowUnsealedMemory, takeOver, fdStore,
                webListen, webTokenFile, DEFAULT_POLL_MICROS);
    }

    /** Without --fd-store and the web console. */
    public DaemonConfig(Path socketPath, int maxPorts, List<PortConfig> ports, Path apiSocket,
                        HostPort metricsListen, System.Logger.Level logLevel, boolean allowUnsealedMemory,
                        boolean takeOver) {
        this(socketPath, maxPorts, ports, apiSocket, metricsListen, logLevel, allowUnsealedMemory, takeOver, false,
                null, null);
    }

    /** Without --take-over. */
    public DaemonConfig(Path socketPath, int maxPorts, List<PortConfig> ports, Path apiSocket,
                        HostPort metricsListen, System.Logger.Level logLevel, boolean allowUnsealedMemory) {
        this(socketPath, maxPorts, ports, apiSocket, metricsListen, logLevel, allowUnsealedMemory, false);
    }

    /** Without --allow-unsealed-memory. */
    public DaemonConfig(Path socketPath, int maxPorts, List<PortConfig> ports, Path apiSocket,
                        HostPort metricsListen, System.Logger.Level logLevel) {
        this(socketPath, maxPorts, ports, apiSocket, metricsListen, logLevel, false);
    }

    public static final int DEFAULT_MAX_PORTS = 31;
    /**
     * --poll-us default: 200 µs. The window opens only after a reply-sized exchange (bulk closes
     * it), so streams lose nothing to it; it halved the device-limit round trip and took a TCG
     * guest's from about 0.86x the built-in device's to 0.64x, and an idle device still sleeps
     * (issue 14, docs/benchmarks-devlimit.md, "The poll window after small messages only").
     */
    public static final int DEFAULT_POLL_MICROS = 200;
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
        if (webTokenFile != null && webListen == null) {
            throw new IllegalArgumentException("--web-token-file needs --web-listen");
        }
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
        Claims claims = new Claims();
        claims.path(socketPath, "--socket-path");
        if (apiSocket != null) {
            claims.path(apiSocket, "--api-socket");
        }
        if (metricsListen != null) {
            claims.tcp(metricsListen, "--metrics-listen");
        }
        claims.ports(ports, maxPorts, "--max-ports", "");
    }
}
