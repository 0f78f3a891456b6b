package io.vportd.console.cli;

import io.vportd.console.control.PortConfig;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The picocli description of {@code vportd [OPTIONS]}. Use {@link #parse} (or
 * {@link DaemonConfig#parse}); the annotated fields are only the raw command line.
 */
@Command(name = "vportd",
        mixinStandardHelpOptions = true,
        versionProvider = VportdCommand.Version.class,
        usageHelpWidth = 100,
        sortOptions = false,
        headerHeading = "",
        header = "vhost-user backend serving a multiport virtio-console (virtio-serial) to QEMU guests.",
        synopsisHeading = "%nUsage: ",
        descriptionHeading = "%n",
        description = {
                "vportd listens on --socket-path for QEMU's vhost-user connection and offers a virtio console",
                "device (virtio id 3) with VIRTIO_CONSOLE_F_MULTIPORT and F_SIZE. Each --port becomes a",
                "guest port (/dev/vport<dev>p<nr>, /dev/virtio-ports/<name>, or /dev/hvcN for a console)",
                "whose data is carried to and from a host endpoint."},
        optionListHeading = "%nOptions:%n",
        footerHeading = "%n",
        footer = {})
public final class VportdCommand {

    /** The version printed by --version. */
    public static final String VERSION = "0.1.0-SNAPSHOT";

    @Option(names = "--socket-path", paramLabel = "PATH", required = true, order = 1,
            description = "The vhost-user Unix socket QEMU connects to (QEMU's -chardev socket,path=PATH). "
                    + "Required.")
    String socketPath;

    @Option(names = "--max-ports", paramLabel = "N", defaultValue = "31", order = 2,
            description = "max_nr_ports of the device, 1..511 (default: ${DEFAULT-VALUE}). The device has "
                    + "2*(N+1) virtqueues; QEMU's num_vqs must be at least that (64 for the default).")
    int maxPorts;

    @Option(names = "--port", paramLabel = "SPEC", order = 3,
            description = "Adds a port; repeat for more ports. SPEC is a comma-separated list of keys, "
                    + "see PORT SPEC below. Example: nr=1,name=org.example.log,socket=/run/vm1/log.sock")
    List<String> ports = new ArrayList<>();

    @Option(names = "--api-socket", paramLabel = "PATH", order = 4,
            description = "Unix socket for the management API (adding/removing ports at run time). "
                    + "Optional; without it there is no API. Client: vportd ctl --api-socket PATH --help.")
    String apiSocket;

    @Option(names = "--metrics-listen", paramLabel = "HOST:PORT", order = 5,
            description = "Serve metrics over HTTP at HOST:PORT (HOST defaults to 127.0.0.1, [::1]:PORT for "
                    + "IPv6; PORT 0 picks a free port, logged). Optional; without it no metrics listener is opened.")
    String metricsListen;

    @Option(names = "--log-level", paramLabel = "LEVEL", defaultValue = "info", order = 6,
            description = "One of off, error, warning, info, debug, trace, all (default: ${DEFAULT-VALUE}).")
    String logLevel;

    @Option(names = "--allow-unsealed-memory", order = 7,
            description = "Accept guest memory whose file is not sealed against shrinking (F_SEAL_SHRINK). "
                    + "Without it such memory is refused: a frontend that truncates the file later would make "
                    + "vportd fault. QEMU seals memory-backend-memfd by default; hugetlbfs files (memory-backend-file "
                    + "on /dev/hugepages) cannot be sealed and need this option. A fault in unsealed memory then "
                    + "ends that session only.")
    boolean allowUnsealedMemory;

    @Option(names = "--poll-us", paramLabel = "N", defaultValue = "" + DaemonConfig.DEFAULT_POLL_MICROS, order = 8,
            description = "Adaptive poll: after moving data, the data-plane thread keeps looking at its rings and "
                    + "endpoints for up to N microseconds before it sleeps, which cuts the latency of a reply that "
                    + "follows closely at the cost of that much CPU after each burst; an idle device sleeps as "
                    + "without it. Leave it off when vportd shares CPUs with the guests' vCPU threads. "
                    + "0..1000000, 0 disables (default: ${DEFAULT-VALUE}).")
    int pollMicros;

    /** Supplies --version. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"vportd " + VERSION};
        }
    }

    private static final String FOOTER = """
            PORT SPEC (--port):
            %s

            RESIZE FIELD ORDER (the trap):
              The virtio spec sends a console's size as cols, then rows. The Linux driver read rows
              first for years, switched to the spec order in 6.15 (stable kernels took the switch:
              Debian trixie's 6.12 reads cols first), and that switch was reverted in 2025. vportd
              defaults to the spec's cols-rows. If a guest's terminal comes up with width and height
              swapped (an older kernel, or one with the revert), set resize-order=rows-cols on that port.

            EXAMPLE:
              vportd --socket-path /run/vm1/vportd.sock --max-ports 31 \\
                     --port nr=0,console,stdio \\
                     --port nr=3,name=org.qemu.clipboard,socket=/run/vm1/clip.sock \\
                     --port nr=4,name=org.example.log,file=/var/log/x.log

              qemu-system-x86_64 -machine q35,memory-backend=mem \\
                -object memory-backend-memfd,id=mem,size=1G,share=on \\
                -chardev socket,id=vp,path=/run/vm1/vportd.sock \\
                -device vhost-user-test-device-pci,chardev=vp,virtio-id=3,num_vqs=64,config_size=12

              Guest memory must be shared (share=on). num_vqs = 2*(max-ports+1). The device
              vhost-user-test-device-pci needs QEMU 10.2 or later.
            """.formatted(PortSpecParser.KEYS_HELP.indent(2).stripTrailing());

    private VportdCommand() {
    }

    private static CommandLine newCommandLine(VportdCommand command) {
        CommandLine cl = new CommandLine(command);
        cl.setExpandAtFiles(false);
        cl.getCommandSpec().usageMessage().footer(FOOTER.split("\n", -1));
        return cl;
    }

    /** The full --help text. */
    public static String usage() {
        StringWriter out = new StringWriter();
        newCommandLine(new VportdCommand()).usage(new PrintWriter(out, true));
        return out.toString();
    }

    /** Prints the --help text. */
    public static void printUsage(PrintStream out) {
        out.print(usage());
        out.flush();
    }

    /**
     * Parses and cross-checks a command line.
     *
     * @throws UsageException with a clear error, or informational for --help / --version
     */
    public static DaemonConfig parse(String... args) throws UsageException {
        VportdCommand command = new VportdCommand();
        CommandLine cl = newCommandLine(command);
        try {
            cl.parseArgs(args == null ? new String[0] : args);
        } catch (CommandLine.ParameterException e) {
            throw UsageException.error(e.getMessage() + "\nTry 'vportd --help' for more information.");
        }
        if (cl.isUsageHelpRequested()) {
            throw UsageException.informational(usage());
        }
        if (cl.isVersionHelpRequested()) {
            throw UsageException.informational("vportd " + VERSION);
        }
        try {
            return command.toConfig();
        } catch (IllegalArgumentException e) {
            throw UsageException.error(e.getMessage() + "\nTry 'vportd --help' for more information.");
        }
    }

    private DaemonConfig toConfig() {
        Path socket = path("--socket-path", socketPath);
        if (socketPath.getBytes(java.nio.charset.StandardCharsets.UTF_8).length
                > PortSpecParser.MAX_SOCKET_PATH_BYTES) {
            throw new IllegalArgumentException("--socket-path: a Unix socket path is at most "
                    + PortSpecParser.MAX_SOCKET_PATH_BYTES + " bytes");
        }
        Path api = null;
        if (apiSocket != null) {
            api = path("--api-socket", apiSocket);
            if (apiSocket.getBytes(java.nio.charset.StandardCharsets.UTF_8).length
                    > PortSpecParser.MAX_SOCKET_PATH_BYTES) {
                throw new IllegalArgumentException("--api-socket: a Unix socket path is at most "
                        + PortSpecParser.MAX_SOCKET_PATH_BYTES + " bytes");
            }
        }
        HostPort metrics = null;
        if (metricsListen != null) {
            try {
                metrics = HostPort.parse(metricsListen);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--metrics-listen: " + e.getMessage());
            }
        }
        System.Logger.Level level = level(logLevel);
        List<PortConfig> parsed = new ArrayList<>();
        for (String spec : ports) {
            try {
                parsed.add(PortSpecParser.parse(spec));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--port: " + e.getMessage());
            }
        }
        return new DaemonConfig(socket, maxPorts, parsed, api, metrics, level, allowUnsealedMemory, pollMicros);
    }

    private static Path path(String option, String text) {
        if (text == null || text.isEmpty()) {
            throw new IllegalArgumentException(option + " must not be empty");
        }
        if (text.indexOf('\0') >= 0) {
            throw new IllegalArgumentException(option + ": the path contains a NUL character");
        }
        try {
            return Path.of(text);
        } catch (InvalidPathException e) {
            throw new IllegalArgumentException(option + ": invalid path: " + e.getReason());
        }
    }

    /** Parses a --log-level value (case-insensitive; "warn" is accepted for warning). */
    static System.Logger.Level level(String text) {
        String t = text == null ? "" : text.trim().toUpperCase(Locale.ROOT);
        if (t.equals("WARN")) {
            return System.Logger.Level.WARNING;
        }
        for (System.Logger.Level l : System.Logger.Level.values()) {
            if (l.name().equals(t)) {
                return l;
            }
        }
        throw new IllegalArgumentException("--log-level: unknown level '" + text
                + "' (use off, error, warning, info, debug, trace or all)");
    }
}
