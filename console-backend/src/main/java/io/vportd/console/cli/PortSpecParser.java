package io.vportd.console.cli;

import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.control.PortConfig;
import io.vportd.console.control.ResizeOrder;
import io.vportd.console.portlog.LogSpec;

import java.nio.charset.StandardCharsets;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses QEMU-like port specifications: comma-separated {@code key} or {@code key=value} items,
 * a doubled comma {@code ,,} standing for a literal comma inside a value. For example
 * {@code nr=0,console,stdio} or {@code nr=3,name=org.qemu.clipboard,socket=/run/vm1/clip.sock}.
 *
 * <p>Keys: {@code nr=N} (required), {@code name=NAME}, {@code console}, {@code cols=N},
 * {@code rows=N}, {@code resize-order=cols-rows|rows-cols}, and exactly one endpoint:
 * {@code stdio}, {@code null}, {@code pty[=LINK]}, {@code socket=PATH}, {@code unix-client=PATH},
 * {@code file=PATH}, {@code tcp=[HOST:]PORT}; and what is recorded of the guest output:
 * {@code log=PATH|journal}, {@code log-max=SIZE}, {@code log-keep=N}, {@code log-timestamps},
 * {@code replay=SIZE} (see {@link LogSpec}).
 *
 * <p>Every problem is an {@link IllegalArgumentException} whose message quotes the spec.
 */
public final class PortSpecParser {

    /** Longest Unix socket path in bytes (sun_path holds 108 including the NUL). */
    public static final int MAX_SOCKET_PATH_BYTES = 107;

    /** The help text's description of the keys (kept next to the parser so they agree). */
    public static final String KEYS_HELP = """
              nr=N                  port id, 0 .. max-ports-1 (required; port N uses queues 2N+2/2N+3,
                                    port 0 uses queues 0/1)
              name=NAME             announced with PORT_NAME; the guest's udev makes
                                    /dev/virtio-ports/NAME (at most 255 bytes of UTF-8, printable,
                                    no '/', no whitespace)
              console               announce with CONSOLE_PORT: the guest makes it /dev/hvcN
              cols=N,rows=N         initial terminal size of a console port (1..65535 each)
              resize-order=ORDER    field order of RESIZE for a console port: cols-rows (default,
                                    the virtio spec; Debian trixie's 6.12) or rows-cols (older
                                    kernels and those with the 2025 revert)
             exactly one endpoint:
              stdio                 the daemon's stdin/stdout (one port at most)
              socket=PATH           Unix socket the daemon listens on, one client at a time
              unix-client=PATH      Unix socket the daemon connects to
              tcp=[HOST:]PORT       TCP listener, HOST defaults to 127.0.0.1 ([::1]:PORT for IPv6);
                                    PORT 0 picks a free port (logged)
              pty[=LINK]            a pseudo terminal, optionally symlinked at LINK
              file=PATH             append guest output to PATH; nothing goes to the guest
              null                  discard guest output
             guest output recorded besides the endpoint (docs/logging.md):
              log=PATH              also write the port's guest output to PATH (0600), off the
                                    data plane: a log that cannot keep up drops (counted, and a
                                    line in the log says how many bytes) instead of slowing anything
              log-max=SIZE          rotate PATH at SIZE bytes (default 16M, at least 4096; K, M, G)
              log-keep=N            rotated files kept, PATH.1 .. PATH.N (default 4, at most 1000)
              log-timestamps        start each line of PATH with an RFC 3339 UTC time
              log=journal           send each line to the systemd journal (native socket), with
                                    VPORTD_DEVICE, VPORTD_PORT and VPORTD_PORT_NAME fields
              replay=SIZE           keep the last SIZE bytes of guest output and send them first to
                                    each host client that connects (consoles: 64K unless given;
                                    0 turns it off; at most 1M)
             A literal comma inside a value is written as two commas (,,).""";

    private static final List<String> ENDPOINT_KEYS =
            List.of("stdio", "null", "pty", "socket", "unix-client", "file", "tcp", "web");
    private static final List<String> OTHER_KEYS =
            List.of("nr", "name", "console", "cols", "rows", "resize-order", "log", "log-max", "log-keep",
                    "log-timestamps", "replay");

    private PortSpecParser() {
    }

    /**
     * The port spec that {@link #parse} turns back into {@code c} (commas in values doubled): how a
     * live hand-over carries port configurations.
     */
    public static String format(PortConfig c) {
        StringBuilder b = new StringBuilder("nr=").append(c.id());
        if (c.name() != null) {
            b.append(",name=").append(c.name().replace(",", ",,"));
        }
        if (c.console()) {
            b.append(",console");
            if (c.sizeKnown()) {
                b.append(",cols=").append(c.cols()).append(",rows=").append(c.rows());
            }
            if (c.resizeOrder() != PortConfig.DEFAULT_RESIZE_ORDER) {
                b.append(",resize-order=").append(c.resizeOrder().specName());
            }
        }
        b.append(',').append(c.endpoint().toSpec().replace(",", ",,"));
        LogSpec log = c.log();
        if (log.journal()) {
            b.append(",log=journal");
        } else if (log.path() != null) {
            b.append(",log=").append(log.path().toString().replace(",", ",,")).append(",log-max=").append(log.maxBytes())
                    .append(",log-keep=").append(log.keep());
            if (log.timestamps()) {
                b.append(",log-timestamps");
            }
        }
        if (log.replayBytes() != LogSpec.defaults(c.console()).replayBytes()) {
            b.append(",replay=").append(log.replayBytes());
        }
        return b.toString();
    }

    /**
     * Parses one port spec.
     *
     * @throws IllegalArgumentException naming the spec and the problem
     */
    public static PortConfig parse(String spec) {
        if (spec == null || spec.isBlank()) {
            throw new IllegalArgumentException("port spec '" + (spec == null ? "" : spec) + "': empty");
        }
        Map<String, String> items = new LinkedHashMap<>(); // value null = key given without '='
        for (String item : split(spec)) {
            if (item.isEmpty()) {
                throw fail(spec, "empty item (stray comma?)");
            }
            int eq = item.indexOf('=');
            String key = eq < 0 ? item : item.substring(0, eq);
            String value = eq < 0 ? null : item.substring(eq + 1);
            if (key.isEmpty()) {
                throw fail(spec, "item '" + item + "' has no key");
            }
            if (!ENDPOINT_KEYS.contains(key) && !OTHER_KEYS.contains(key)) {
                throw fail(spec, "unknown key '" + key + "' (known: " + String.join(", ", OTHER_KEYS) + ", "
                        + String.join(", ", ENDPOINT_KEYS) + ")");
            }
            if (items.containsKey(key)) {
                throw fail(spec, "duplicate key '" + key + "'");
            }
            items.put(key, value);
        }

        if (!items.containsKey("nr")) {
            throw fail(spec, "missing nr=N (the port id)");
        }
        int id = number(spec, "nr", items, 0, PortConfig.MAX_ID);

        String name = null;
        if (items.containsKey("name")) {
            name = needValue(spec, "name", items, "name=NAME");
            String problem = PortConfig.nameProblem(name);
            if (problem != null) {
                throw fail(spec, problem);
            }
        }
        boolean console = flag(spec, "console", items);

        int cols = 0;
        int rows = 0;
        if (items.containsKey("cols") || items.containsKey("rows")) {
            if (!items.containsKey("cols") || !items.containsKey("rows")) {
                throw fail(spec, "cols and rows must be given together");
            }
            cols = number(spec, "cols", items, 1, 0xFFFF);
            rows = number(spec, "rows", items, 1, 0xFFFF);
        }
        ResizeOrder order = PortConfig.DEFAULT_RESIZE_ORDER;
        if (items.containsKey("resize-order")) {
            String text = needValue(spec, "resize-order", items, "resize-order=rows-cols|cols-rows");
            order = ResizeOrder.fromSpecName(text);
            if (order == null) {
                throw fail(spec, "resize-order must be rows-cols or cols-rows, got '" + text + "'");
            }
        }
        if (!console && (cols != 0 || items.containsKey("resize-order"))) {
            throw fail(spec, "cols, rows and resize-order only apply to a console port (add 'console')");
        }

        EndpointSpec endpoint = endpoint(spec, items);
        return new PortConfig(id, name, console, cols, rows, order, endpoint, logSpec(spec, items, console));
    }

    private static LogSpec logSpec(String spec, Map<String, String> items, boolean console) {
        Path path = null;
        boolean journal = false;
        if (items.containsKey("log")) {
            String v = needValue(spec, "log", items, "log=PATH or log=journal");
            if (v.equals("journal")) {
                journal = true;
            } else {
                path = path(spec, "log", v, false);
            }
        }
        if (path == null && (items.containsKey("log-max") || items.containsKey("log-keep")
                || items.containsKey("log-timestamps"))) {
            throw fail(spec, "log-max, log-keep and log-timestamps apply to a log file (add log=PATH)"
                    + (journal ? "; the journal rotates and stamps entries itself" : ""));
        }
        long max = LogSpec.DEFAULT_LOG_MAX;
        if (items.containsKey("log-max")) {
            String v = needValue(spec, "log-max", items, "log-max=SIZE");
            max = LogSpec.parseSize(v, Long.MAX_VALUE);
            if (max < 0) {
                throw fail(spec, "log-max: '" + v + "' is not a size (digits with an optional K, M or G)");
            }
            if (max < LogSpec.MIN_LOG_MAX) {
                throw fail(spec, "log-max must be at least " + LogSpec.MIN_LOG_MAX + " bytes, got " + max);
            }
        }
        int keep = items.containsKey("log-keep") ? number(spec, "log-keep", items, 1, LogSpec.MAX_KEEP)
                : LogSpec.DEFAULT_KEEP;
        boolean timestamps = flag(spec, "log-timestamps", items);
        int replay = LogSpec.defaults(console).replayBytes();
        if (items.containsKey("replay")) {
            String v = needValue(spec, "replay", items, "replay=SIZE");
            long r = LogSpec.parseSize(v, Long.MAX_VALUE);
            if (r < 0) {
                throw fail(spec, "replay: '" + v + "' is not a size (digits with an optional K, M or G)");
            }
            if (r > LogSpec.MAX_REPLAY) {
                throw fail(spec, "replay must be at most " + LogSpec.MAX_REPLAY + " bytes (1M), got " + r);
            }
            replay = (int) r;
        }
        return new LogSpec(path, journal, max, keep, timestamps, replay);
    }

    private static EndpointSpec endpoint(String spec, Map<String, String> items) {
        String found = null;
        for (String key : items.keySet()) {
            if (ENDPOINT_KEYS.contains(key)) {
                if (found != null) {
                    throw fail(spec, "two endpoints, '" + found + "' and '" + key + "' (exactly one per port)");
                }
                found = key;
            }
        }
        if (found == null) {
            throw fail(spec, "no endpoint (give one of stdio, socket=PATH, unix-client=PATH, tcp=[HOST:]PORT, "
                    + "pty[=LINK], file=PATH, null, web)");
        }
        return switch (found) {
            case "stdio" -> {
                flag(spec, "stdio", items);
                yield new EndpointSpec.Stdio();
            }
            case "null" -> {
                flag(spec, "null", items);
                yield new EndpointSpec.Null();
            }
            case "web" -> {
                flag(spec, "web", items);
                yield new EndpointSpec.Web();
            }
            case "pty" -> {
                String link = items.get("pty");
                if (link != null && link.isEmpty()) {
                    throw fail(spec, "'pty=' needs a link path (or write just 'pty')");
                }
                yield new EndpointSpec.Pty(link == null ? null : path(spec, "pty", link, false));
            }
            case "socket" -> new EndpointSpec.UnixSocket(
                    path(spec, "socket", needValue(spec, "socket", items, "socket=PATH"), true));
            case "unix-client" -> new EndpointSpec.UnixClient(
                    path(spec, "unix-client", needValue(spec, "unix-client", items, "unix-client=PATH"), true));
            case "file" -> new EndpointSpec.FileOut(
                    path(spec, "file", needValue(spec, "file", items, "file=PATH"), false));
            case "tcp" -> {
                String text = needValue(spec, "tcp", items, "tcp=[HOST:]PORT");
                try {
                    HostPort hp = HostPort.parse(text);
                    yield new EndpointSpec.Tcp(hp.host(), hp.port());
                } catch (IllegalArgumentException e) {
                    throw fail(spec, "tcp: " + e.getMessage());
                }
            }
            default -> throw new AssertionError(found);
        };
    }

    /** Splits at single commas; ",," is a literal comma. */
    private static List<String> split(String spec) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (int i = 0; i < spec.length(); i++) {
            char c = spec.charAt(i);
            if (c == ',') {
                if (i + 1 < spec.length() && spec.charAt(i + 1) == ',') {
                    cur.append(',');
                    i++;
                } else {
                    out.add(cur.toString());
                    cur.setLength(0);
                }
            } else {
                cur.append(c);
            }
        }
        out.add(cur.toString());
        return out;
    }

    private static boolean flag(String spec, String key, Map<String, String> items) {
        if (!items.containsKey(key)) {
            return false;
        }
        if (items.get(key) != null) {
            throw fail(spec, "'" + key + "' takes no value (write just '" + key + "')");
        }
        return true;
    }

    private static String needValue(String spec, String key, Map<String, String> items, String form) {
        String v = items.get(key);
        if (v == null || v.isEmpty()) {
            throw fail(spec, "'" + key + "' needs a value (" + form + ")");
        }
        return v;
    }

    private static int number(String spec, String key, Map<String, String> items, int min, int max) {
        String text = needValue(spec, key, items, key + "=N");
        int v = HostPort.parseDecimal(text, Integer.MAX_VALUE);
        if (v < 0) {
            if (text.chars().allMatch(c -> c >= '0' && c <= '9')) {
                throw fail(spec, key + " must be " + min + ".." + max + ", got " + text);
            }
            throw fail(spec, key + ": '" + text + "' is not a number");
        }
        if (v < min || v > max) {
            throw fail(spec, key + " must be " + min + ".." + max + ", got " + v);
        }
        return v;
    }

    private static Path path(String spec, String key, String text, boolean socket) {
        if (text.indexOf('\0') >= 0) {
            throw fail(spec, key + ": the path contains a NUL character");
        }
        if (socket) {
            int bytes = text.getBytes(StandardCharsets.UTF_8).length;
            if (bytes > MAX_SOCKET_PATH_BYTES) {
                throw fail(spec, key + ": a Unix socket path is at most " + MAX_SOCKET_PATH_BYTES + " bytes, this one is "
                        + bytes);
            }
        }
        try {
            return Path.of(text);
        } catch (InvalidPathException e) {
            throw fail(spec, key + ": invalid path: " + e.getReason());
        }
    }

    private static IllegalArgumentException fail(String spec, String problem) {
        return new IllegalArgumentException("port spec '" + spec + "': " + problem);
    }
}
