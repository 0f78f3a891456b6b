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

    private static final int DEFAULT_MAX_PORTS = 31;
    private static final String DEFAULT_LOG_LEVEL = "info";

    /** The version printed by --version (from the build; see {@link BuildInfo}). */
    public static final String VERSION = BuildInfo.current().version();

    @Option(names = "--socket-path", paramLabel = "PATH", order = 1,
            description = "The vhost-user Unix socket QEMU connects to (QEMU's -chardev socket,path=PATH). "
                    + "Required, unless --config describes the devices.")
    String socketPath;

    @Option(names = "--config", paramLabel = "FILE", order = 1,
            description = "Serve several devices, one per VM, described in a TOML file: each [[device]] has an id, "
                    + "its own vhost-user socket, max-ports and ports (the --port syntax); api-socket, handover-socket, "
                    + "metrics-listen, event-loops and log-level may be set there too. Only --log-level and --take-over go with it on the command line. "
                    + "Devices can also be added and removed at run time (vportd ctl add-device). "
                    + "See docs/multi-device.md.")
    String config;

    @Option(names = "--max-ports", paramLabel = "N", defaultValue = "" + DEFAULT_MAX_PORTS, order = 2,
            description = "max_nr_ports of the device, 1..511 (default: ${DEFAULT-VALUE}). The device has "
                    + "2*(N+1) virtqueues; QEMU's num_vqs must be at least that (64 for the default).")
    int maxPorts = DEFAULT_MAX_PORTS;

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

    @Option(names = "--web-listen", paramLabel = "[HOST:]PORT", order = 5,
            description = "Serve the web console (a port list and an xterm.js terminal per port) at HOST:PORT "
                    + "(HOST defaults to 127.0.0.1). Access needs the token (--web-token-file, or one generated "
                    + "and printed once at start). A port with the endpoint 'web' takes typed input from it; "
                    + "every port's output can be viewed. See docs/web-console.md.")
    String webListen;

    @Option(names = "--web-token-file", paramLabel = "PATH", order = 5,
            description = "The web console's token: a file of mode 0600 (or stricter) holding one line. "
                    + "Without it a token is generated at start and printed once on standard error.")
    String webTokenFile;

    @Option(names = "--log-level", paramLabel = "LEVEL", defaultValue = DEFAULT_LOG_LEVEL, order = 6,
            description = "One of off, error, warning, info, debug, trace, all (default: ${DEFAULT-VALUE}).")
    String logLevel = DEFAULT_LOG_LEVEL;

    @Option(names = "--allow-unsealed-memory", order = 7,
            description = "Accept guest memory whose file is not sealed against shrinking (F_SEAL_SHRINK). "
                    + "Without it such memory is refused: a frontend that truncates the file later would make "
                    + "vportd fault. QEMU seals memory-backend-memfd by default; hugetlbfs files (memory-backend-file "
                    + "on /dev/hugepages) cannot be sealed and need this option. A fault in unsealed memory then "
                    + "ends that session only.")
    boolean allowUnsealedMemory;

    @Option(names = "--take-over", order = 8,
            description = "Take the device over from the vportd that serves --socket-path now, without the guest "
                    + "noticing: the running daemon hands over the vhost-user connection, guest memory, rings, every "
                    + "port with its endpoint and connected host client, and exits once this process serves. "
                    + "Use it to upgrade or restart vportd, or to change --log-level, --metrics-listen or JVM options. "
                    + "Ports, --max-ports and --api-socket come from the running daemon and may not be given. "
                    + "With --config FILE it takes over every device of the running --config daemon at once (one "
                    + "pause for all), found by FILE's hand-over socket (handover-socket, else api-socket + "
                    + "'.handover'); the devices, their ports (those added at run time too) and the API socket come "
                    + "from the running daemon, not from FILE, which gives only log-level, event-loops and "
                    + "metrics-listen. Fails at once, creating nothing, when nobody serves --socket-path (or FILE's "
                    + "hand-over socket). See docs/operations.md.")
    boolean takeOver;

    @Option(names = "--fd-store", order = 9,
            description = "Under systemd (Type=notify, FileDescriptorStoreMax= large enough): keep every descriptor "
                    + "the guest's device needs (vhost-user connection, guest memory, eventfds, endpoint listeners and "
                    + "connected clients) and a checkpoint of the device in the service's file descriptor store, and "
                    + "at start recover from what the store passes back. A crashed or restarted vportd then serves the "
                    + "same guest on, without QEMU reconnecting; bytes in flight at the crash may be lost or repeated. "
                    + "A stop (SIGTERM) with it leaves everything to the store: no socket file is removed. Without "
                    + "$NOTIFY_SOCKET it does nothing. Not with --take-over. See docs/operations.md.")
    boolean fdStore;

    @Option(names = "--poll-us", paramLabel = "N", defaultValue = "" + DaemonConfig.DEFAULT_POLL_MICROS, order = 10,
            description = "Adaptive poll: after a cycle that moved a reply's worth of data (under 4 KiB), the "
                    + "data-plane thread keeps looking at its rings and endpoints for up to N microseconds before it "
                    + "sleeps, so the answer that follows is served without a wake-up; that costs up to N µs of CPU "
                    + "per small message. Bulk transfers and idle devices sleep as without it. "
                    + "0..1000000, 0 disables (default: ${DEFAULT-VALUE}).")
    int pollMicros = DaemonConfig.DEFAULT_POLL_MICROS;

    /** Supplies --version. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return BuildInfo.current().versionText().split("\n");
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

              An interactive console that is also logged, rotated and replayed to late clients:
                     --port nr=0,console,socket=/run/vm1/con.sock,log=/var/log/vm1/console.log,log-max=8M,log-keep=3,log-timestamps
              then: socat -,raw,echo=0 UNIX-CONNECT:/run/vm1/con.sock (it first gets the last 64K
              of output), or vportd ctl --api-socket API log 0 --follow (read-only).
              Environment: VPORTD_JOURNAL_SOCKET replaces /run/systemd/journal/socket for log=journal.

              qemu-system-x86_64 -machine q35,memory-backend=mem \\
                -object memory-backend-memfd,id=mem,size=1G,share=on \\
                -chardev socket,id=vp,path=/run/vm1/vportd.sock \\
                -device vhost-user-test-device-pci,chardev=vp,virtio-id=3,num_vqs=64,config_size=12

              Guest memory must be shared (share=on). num_vqs = 2*(max-ports+1). The device
              vhost-user-test-device-pci needs QEMU 10.2 or later.
            """.formatted(PortSpecParser.KEYS_HELP.indent(2).stripTrailing());

    private VportdCommand() {
    }

    /** The picocli model of the command line, with the --help footer: what the man page and completion are made from. */
    public static CommandLine commandLine() {
        return newCommandLine(new VportdCommand());
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

    /**
     * For the command line's AOT cache (ctl, --help, --version; see Main): builds and prints
     * picocli's model of this command and parses --version through it.
     */
    public static void walkCliForAotCache() {
        usage();
        try {
            parseInvocation("--version");
        } catch (UsageException expected) {
            // the version text: picocli's parse and its version provider have run
        }
    }

    /**
     * For the daemon's AOT cache (see Main), trained on a daemon of the command line: reads a
     * small --config file's text, so that a daemon of a --config file finds its parser there too.
     */
    public static void walkDaemonForAotCache() {
        ConfigFile.parse(Path.of("training.toml"), """
                api-socket = "/run/vportd/api.sock"
                event-loops = 1

                [[device]]
                id = "vm1"
                socket = "/run/vportd/vm1.sock"
                max-ports = 4
                ports = ["nr=0,console,null", "nr=1,name=org.example.a,socket=/run/vportd/vm1-a.sock"]
                """, null);
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
        Invocation i = parseInvocation(args);
        if (i instanceof DaemonConfig c) {
            return c;
        }
        throw UsageException.error("--config describes several devices, not one");
    }

    /**
     * Parses and cross-checks a command line: one device from options, or the devices of
     * {@code --config FILE} (read and checked here).
     *
     * @throws UsageException with a clear error, or informational for --help / --version
     */
    public static Invocation parseInvocation(String... args) throws UsageException {
        return parseInvocation(true, args == null ? new String[0] : args);
    }

    /** As {@link #parseInvocation(String...)}; {@code quick} false always takes picocli's way (for tests). */
    static Invocation parseInvocation(boolean quick, String... args) throws UsageException {
        VportdCommand command = new VportdCommand();
        java.util.Set<String> matched = quick ? command.parseQuickly(args) : null;
        if (matched == null) {
            command = new VportdCommand();
            matched = command.parseWithPicocli(args);
        }
        return command.invocation(matched);
    }

    /**
     * picocli's parse, for what {@link #parseQuickly} leaves to it: the options matched, or a
     * {@link UsageException} (an error, or the --help / --version text).
     */
    private java.util.Set<String> parseWithPicocli(String[] args) throws UsageException {
        CommandLine cl = newCommandLine(this);
        try {
            cl.parseArgs(args);
        } catch (CommandLine.ParameterException e) {
            throw UsageException.error(e.getMessage() + "\nTry 'vportd --help' for more information.");
        }
        if (cl.isUsageHelpRequested()) {
            throw UsageException.informational(usage());
        }
        if (cl.isVersionHelpRequested()) {
            throw UsageException.informational(BuildInfo.current().versionText());
        }
        java.util.Set<String> matched = new java.util.HashSet<>();
        for (CommandLine.Model.OptionSpec o : cl.getParseResult().matchedOptions()) {
            matched.add(o.longestName());
        }
        return matched;
    }

    /** The options {@link #parseQuickly} knows, each with whether it takes a value. */
    static final java.util.Map<String, Boolean> QUICK_OPTIONS = java.util.Map.ofEntries(
            java.util.Map.entry("--socket-path", true), java.util.Map.entry("--config", true),
            java.util.Map.entry("--max-ports", true), java.util.Map.entry("--port", true),
            java.util.Map.entry("--api-socket", true), java.util.Map.entry("--metrics-listen", true),
            java.util.Map.entry("--web-listen", true), java.util.Map.entry("--web-token-file", true),
            java.util.Map.entry("--log-level", true), java.util.Map.entry("--poll-us", true),
            java.util.Map.entry("--allow-unsealed-memory", false), java.util.Map.entry("--take-over", false),
            java.util.Map.entry("--fd-store", false));

    /**
     * The common command line without picocli, whose model costs a daemon's start some 150 ms
     * (it reads the annotations above through proxies the JDK generates at run time): options by
     * their full names, {@code --name value} or {@code --name=value}, each at most once but
     * {@code --port}, numbers in plain decimal. The fields end up as picocli would set them (an
     * option not given keeps its field's initial value, the default picocli also gives it; a test
     * compares the two). Anything else (help, version, an unknown or repeated option, a
     * value that starts with '-', a number picocli would have to judge) returns null: picocli then
     * parses the whole command line and gives its answer or its error.
     *
     * @return the options matched, or null to leave the command line to picocli
     */
    private java.util.Set<String> parseQuickly(String[] args) {
        java.util.Set<String> matched = new java.util.HashSet<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            int eq = a.indexOf('=');
            String name = eq < 0 ? a : a.substring(0, eq);
            Boolean takesValue = QUICK_OPTIONS.get(name);
            if (takesValue == null || (!takesValue && eq >= 0)) {
                return null;
            }
            if (!matched.add(name) && !name.equals("--port")) {
                return null;
            }
            if (!takesValue) {
                switch (name) {
                    case "--allow-unsealed-memory" -> allowUnsealedMemory = true;
                    case "--take-over" -> takeOver = true;
                    default -> fdStore = true;
                }
                continue;
            }
            String value;
            if (eq >= 0) {
                value = a.substring(eq + 1);
            } else if (i + 1 < args.length) {
                value = args[++i];
            } else {
                return null;
            }
            if (value.startsWith("-")) {
                return null;
            }
            switch (name) {
                case "--socket-path" -> socketPath = value;
                case "--config" -> config = value;
                case "--port" -> ports.add(value);
                case "--api-socket" -> apiSocket = value;
                case "--metrics-listen" -> metricsListen = value;
                case "--web-listen" -> webListen = value;
                case "--web-token-file" -> webTokenFile = value;
                case "--log-level" -> logLevel = value;
                default -> { // --max-ports, --poll-us
                    if (!value.matches("0|[1-9][0-9]{0,8}")) {
                        return null;
                    }
                    if (name.equals("--max-ports")) {
                        maxPorts = Integer.parseInt(value);
                    } else {
                        pollMicros = Integer.parseInt(value);
                    }
                }
            }
        }
        return matched;
    }

    /** Cross-checks the parsed command line and makes the invocation it asks for. */
    private Invocation invocation(java.util.Set<String> matched) throws UsageException {
        if (config != null) {
            for (String refused : List.of("--socket-path", "--port", "--max-ports", "--api-socket", "--metrics-listen",
                    "--web-listen", "--web-token-file", "--allow-unsealed-memory", "--fd-store", "--poll-us")) {
                if (matched.contains(refused)) {
                    throw UsageException.error("--config: " + refused + " may not be given with it ("
                            + (List.of("--fd-store", "--web-listen", "--web-token-file", "--poll-us").contains(refused)
                            ? "a daemon of several devices does not offer it yet"
                            : "the file says it, per device where it is a device's") + ")"
                            + "\nTry 'vportd --help' for more information.");
                }
            }
            try {
                System.Logger.Level level = matched.contains("--log-level") ? level(logLevel) : null;
                DevicesConfig loaded = ConfigFile.load(path("--config", config), level);
                if (takeOver && loaded.handover() == null) {
                    throw UsageException.error("--take-over --config: " + loaded.source() + " has neither api-socket "
                            + "nor handover-socket, so there is no hand-over socket to find the running daemon by "
                            + "(a daemon started from it offers no live hand-over)");
                }
                return takeOver ? loaded.withTakeOver() : loaded;
            } catch (IllegalArgumentException e) {
                throw UsageException.error(e.getMessage());
            }
        }
        if (socketPath == null) {
            throw UsageException.error("Missing required option: '--socket-path=PATH' (or --config FILE)"
                    + "\nTry 'vportd --help' for more information.");
        }
        if (takeOver) {
            if (fdStore) {
                throw UsageException.error("--take-over and --fd-store do not go together: under systemd, restart the "
                        + "service instead (it recovers from the store)\nTry 'vportd --help' for more information.");
            }
            for (String refused : List.of("--port", "--max-ports", "--api-socket")) {
                if (matched.contains(refused)) {
                    throw UsageException.error("--take-over: " + refused + " comes from the running daemon and may not be "
                            + "given\nTry 'vportd --help' for more information.");
                }
            }
        }
        try {
            return toConfig();
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
        HostPort web = null;
        if (webListen != null) {
            try {
                web = HostPort.parse(webListen);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--web-listen: " + e.getMessage());
            }
        }
        Path token = webTokenFile == null ? null : path("--web-token-file", webTokenFile);
        System.Logger.Level level = level(logLevel);
        List<PortConfig> parsed = new ArrayList<>();
        for (String spec : ports) {
            try {
                parsed.add(PortSpecParser.parse(spec));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--port: " + e.getMessage());
            }
        }
        return new DaemonConfig(socket, maxPorts, parsed, api, metrics, level, allowUnsealedMemory, takeOver, fdStore,
                web, token, pollMicros);
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
