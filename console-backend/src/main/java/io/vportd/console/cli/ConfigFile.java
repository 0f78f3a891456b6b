package io.vportd.console.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.toml.TomlFactory;
import io.vportd.console.control.PortConfig;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code vportd --config FILE}: the daemon and its devices in TOML.
 *
 * <pre>
 * api-socket = "/run/vportd/api.sock"      # optional
 * handover-socket = "/run/vportd/handover.sock"  # optional: API-SOCKET.handover by default (see DevicesConfig#handover)
 * metrics-listen = "127.0.0.1:9100"        # optional
 * log-level = "info"                       # optional
 * event-loops = 2                          # optional: threads running the devices (default: one per CPU, at most 8)
 *
 * [[device]]
 * id = "vm1"
 * socket = "/run/vportd/vm1.sock"
 * max-ports = 8                            # optional, 31 by default
 * allow-unsealed-memory = false            # optional
 * ports = ["nr=0,console,pty=/run/vm1/console", "nr=1,name=org.qemu.guest_agent.0,socket=/run/vm1/qga.sock"]
 * </pre>
 *
 * Ports use the {@code --port} syntax. Every error names the file, the line and the key; nothing is
 * started from a file with an error. The same device keys, as JSON, make the management API's
 * {@code add-device} ({@link #device}).
 */
public final class ConfigFile {

    /** A file larger than this is not a configuration (256 devices of 31 ports fit in well under it). */
    static final long MAX_BYTES = 4 << 20;
    /** Devices one process serves at most. */
    public static final int MAX_DEVICES = 1024;

    static final Set<String> TOP_KEYS = Set.of("api-socket", "handover-socket", "metrics-listen", "log-level",
            "event-loops", "device");
    /** Most event loops a file may ask for. */
    public static final int MAX_EVENT_LOOPS = 64;
    public static final Set<String> DEVICE_KEYS = Set.of("id", "socket", "max-ports", "allow-unsealed-memory", "ports");

    /** TOML's parser alone: the tree is built by {@link Trees}, no mapper (see there). */
    private static final TomlFactory TOML = new TomlFactory();

    private ConfigFile() {
    }

    /** Where in the file an error is: a line, or nothing when the key cannot be found. */
    @FunctionalInterface
    public interface Locator {
        /** The 1-based line of {@code key} in device {@code device} (-1: top level), or 0 when unknown. */
        int line(int device, String key, String text);

        Locator NONE = (device, key, text) -> 0;
    }

    /**
     * Reads and checks {@code file}.
     *
     * @throws IllegalArgumentException naming the file, line and key of the first error
     */
    public static DevicesConfig load(Path file, System.Logger.Level logLevelOverride) {
        String text;
        try {
            if (Files.size(file) > MAX_BYTES) {
                throw new IllegalArgumentException(file + ": larger than " + (MAX_BYTES >> 20) + " MiB; not a vportd configuration");
            }
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read it: " + e.getMessage());
        }
        return parse(file, text, logLevelOverride);
    }

    /** The file's table as a tree (null for an empty text). */
    private static JsonNode readTree(String text) throws IOException {
        try (com.fasterxml.jackson.core.JsonParser p = TOML.createParser(text)) {
            return Trees.first(p);
        }
    }

    /** {@link #load} on text already read. */
    static DevicesConfig parse(Path file, String text, System.Logger.Level logLevelOverride) {
        JsonNode root;
        try {
            root = readTree(text);
        } catch (JsonProcessingException e) {
            com.fasterxml.jackson.core.JsonLocation at = e.getLocation();
            String where = at == null || at.getLineNr() <= 0 ? file.toString() : file + ":" + at.getLineNr();
            throw new IllegalArgumentException(where + ": not valid TOML: " + e.getOriginalMessage());
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException(file + ": not valid TOML: " + e.getMessage());
        }
        Lines lines = new Lines(text);
        Errors err = new Errors(file.toString(), lines);
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException(file + ": empty: it needs at least one [[device]] or an api-socket");
        }
        for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!TOP_KEYS.contains(key)) {
                throw err.at(-1, key, "unknown key (known: " + String.join(", ", sorted(TOP_KEYS)) + ")");
            }
        }
        Path api = root.has("api-socket") ? socketPath(err, -1, "api-socket", root.get("api-socket")) : null;
        Path handover = root.has("handover-socket")
                ? socketPath(err, -1, "handover-socket", root.get("handover-socket")) : null;
        HostPort metrics = null;
        if (root.has("metrics-listen")) {
            try {
                metrics = HostPort.parse(string(err, -1, "metrics-listen", root.get("metrics-listen")));
            } catch (IllegalArgumentException e) {
                throw err.at(-1, "metrics-listen", e.getMessage());
            }
        }
        System.Logger.Level level = logLevelOverride;
        if (level == null) {
            level = System.Logger.Level.INFO;
            if (root.has("log-level")) {
                try {
                    level = VportdCommand.level(string(err, -1, "log-level", root.get("log-level")));
                } catch (IllegalArgumentException e) {
                    throw err.at(-1, "log-level", e.getMessage().replace("--log-level: ", ""));
                }
            }
        }
        int loops = 0;
        if (root.has("event-loops")) {
            JsonNode n = root.get("event-loops");
            if (!n.isIntegralNumber() || !n.canConvertToInt() || n.intValue() < 1 || n.intValue() > MAX_EVENT_LOOPS) {
                throw err.at(-1, "event-loops", "must be a whole number 1.." + MAX_EVENT_LOOPS + ", got " + n);
            }
            loops = n.intValue();
        }
        List<DeviceConfig> devices = new ArrayList<>();
        JsonNode list = root.get("device");
        if (list != null) {
            if (!list.isArray()) {
                throw err.at(-1, "device", "devices are tables: write [[device]], one per device");
            }
            if (list.size() > MAX_DEVICES) {
                throw err.at(-1, "device", "at most " + MAX_DEVICES + " devices, got " + list.size());
            }
            for (int i = 0; i < list.size(); i++) {
                devices.add(device(list.get(i), i, err));
            }
        }
        if (devices.isEmpty() && api == null) {
            throw new IllegalArgumentException(file + ": no [[device]] and no api-socket: there is nothing to serve "
                    + "(give devices, or an api-socket to add them at run time)");
        }
        // Everything the devices claim, across devices: ids, vhost-user sockets, endpoint paths, TCP addresses.
        Claims claims = new Claims();
        if (api != null) {
            claims.path(api, "api-socket");
        }
        if (metrics != null) {
            claims.tcp(metrics, "metrics-listen");
        }
        if (handover != null) {
            try {
                claims.path(handover, "handover-socket");
            } catch (IllegalArgumentException e) {
                throw err.at(-1, "handover-socket", e.getMessage());
            }
        }
        Map<String, Integer> ids = new HashMap<>();
        for (int i = 0; i < devices.size(); i++) {
            DeviceConfig d = devices.get(i);
            Integer twin = ids.putIfAbsent(d.id(), i);
            if (twin != null) {
                throw err.at(i, "id", "device id '" + d.id() + "' is used by an earlier device too (line "
                        + lines.line(twin, "id", null) + ")");
            }
            try {
                claims.path(d.socketPath(), "device " + d.id() + " socket");
            } catch (IllegalArgumentException e) {
                throw err.at(i, "socket", e.getMessage());
            }
            try {
                claims.ports(d.ports(), d.maxPorts(), "max-ports", "device " + d.id() + ": ");
            } catch (IllegalArgumentException e) {
                throw err.at(i, "ports", e.getMessage());
            }
        }
        return new DevicesConfig(file, api, metrics, level, devices, loops, handover, false);
    }

    /**
     * One device from its keys (a [[device]] table, or an add-device request's JSON); checks the
     * device on its own, not against others.
     */
    public static DeviceConfig device(JsonNode d, int index, Errors err) {
        String label = index >= 0 ? "device " + (index + 1) : "the device";
        if (d == null || !d.isObject()) {
            throw err.at(-1, "device", label + " is not a table");
        }
        for (Iterator<String> it = d.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!DEVICE_KEYS.contains(key)) {
                throw err.at(index, key, "unknown device key (known: " + String.join(", ", sorted(DEVICE_KEYS)) + ")");
            }
        }
        if (!d.has("id")) {
            throw err.at(index, null, label + " has no id");
        }
        String id = string(err, index, "id", d.get("id"));
        try {
            DeviceConfig.checkId(id);
        } catch (IllegalArgumentException e) {
            throw err.at(index, "id", e.getMessage());
        }
        if (!d.has("socket")) {
            throw err.at(index, "id", "device " + id + " has no socket (the vhost-user socket its QEMU connects to)");
        }
        Path socket = socketPath(err, index, "socket", d.get("socket"));
        int maxPorts = DaemonConfig.DEFAULT_MAX_PORTS;
        if (d.has("max-ports")) {
            JsonNode n = d.get("max-ports");
            if (!n.isIntegralNumber() || !n.canConvertToInt()
                    || n.intValue() < 1 || n.intValue() > DaemonConfig.MAX_MAX_PORTS) {
                throw err.at(index, "max-ports", "must be a whole number 1.." + DaemonConfig.MAX_MAX_PORTS
                        + " (QEMU allows at most 1024 queues, i.e. 511 ports), got " + n);
            }
            maxPorts = n.intValue();
        }
        boolean unsealed = false;
        if (d.has("allow-unsealed-memory")) {
            JsonNode n = d.get("allow-unsealed-memory");
            if (!n.isBoolean()) {
                throw err.at(index, "allow-unsealed-memory", "must be true or false, got " + n);
            }
            unsealed = n.booleanValue();
        }
        List<PortConfig> ports = new ArrayList<>();
        if (d.has("ports")) {
            JsonNode list = d.get("ports");
            if (!list.isArray()) {
                throw err.at(index, "ports", "must be a list of port specs (the --port syntax), e.g. "
                        + "[\"nr=0,console,pty\"]");
            }
            if (list.size() > DaemonConfig.MAX_MAX_PORTS) {
                throw err.at(index, "ports", "at most " + DaemonConfig.MAX_MAX_PORTS + " ports, got " + list.size());
            }
            for (JsonNode p : list) {
                if (!p.isTextual()) {
                    throw err.at(index, "ports", "a port is a spec string like \"nr=1,name=x,socket=/p\", got " + p);
                }
                try {
                    ports.add(PortSpecParser.parse(p.textValue()));
                } catch (IllegalArgumentException e) {
                    throw err.atText(index, "ports", p.textValue(), "'" + p.textValue() + "': " + e.getMessage());
                }
            }
        }
        try {
            DeviceConfig c = new DeviceConfig(id, socket, maxPorts, ports, unsealed);
            c.claim(new Claims());
            return c;
        } catch (IllegalArgumentException e) {
            throw err.at(index, "ports", e.getMessage());
        }
    }

    private static String string(Errors err, int device, String key, JsonNode n) {
        if (!n.isTextual()) {
            throw err.at(device, key, "must be a string, got " + n);
        }
        return n.textValue();
    }

    private static Path socketPath(Errors err, int device, String key, JsonNode n) {
        String text = string(err, device, key, n);
        if (text.isEmpty() || text.indexOf('\0') >= 0) {
            throw err.at(device, key, "must be a non-empty path without NUL characters");
        }
        if (text.getBytes(StandardCharsets.UTF_8).length > PortSpecParser.MAX_SOCKET_PATH_BYTES) {
            throw err.at(device, key, "a Unix socket path is at most " + PortSpecParser.MAX_SOCKET_PATH_BYTES + " bytes");
        }
        try {
            return Path.of(text);
        } catch (InvalidPathException e) {
            throw err.at(device, key, "invalid path: " + e.getReason());
        }
    }

    private static List<String> sorted(Set<String> keys) {
        return keys.stream().sorted().toList();
    }

    /** Makes error messages that say where: "FILE:LINE: device vm1: key 'ports': ...". */
    public static final class Errors {
        private final String source;
        private final Locator locator;

        public Errors(String source, Locator locator) {
            this.source = source;
            this.locator = locator;
        }

        IllegalArgumentException at(int device, String key, String message) {
            return atText(device, key, null, message);
        }

        IllegalArgumentException atText(int device, String key, String text, String message) {
            int line = key == null ? locator.line(device, "[[device]]", null) : locator.line(device, key, text);
            StringBuilder b = new StringBuilder(source);
            if (line > 0) {
                b.append(':').append(line);
            }
            b.append(": ");
            if (device >= 0) {
                b.append("device ").append(device + 1).append(": ");
            }
            if (key != null) {
                b.append("key '").append(key).append("': ");
            }
            return new IllegalArgumentException(b.append(message).toString());
        }
    }

    /**
     * Finds keys in the text the tree came from (Jackson's TOML tree has no positions): the line of
     * a key in the top level or the n-th {@code [[device]]} table, or of a string in that table.
     */
    static final class Lines implements Locator {
        private static final Pattern HEADER = Pattern.compile("^\\s*\\[\\[\\s*\"?device\"?\\s*]]");
        private static final Pattern OTHER_HEADER = Pattern.compile("^\\s*\\[");
        private static final Pattern HEADER_NAME = Pattern.compile("^\\s*\\[+\\s*\"?([A-Za-z0-9_-]+)");
        private static final Pattern KEY = Pattern.compile("^\\s*\"?([A-Za-z0-9_-]+)\"?\\s*=");

        private final String[] lines;
        /** Per table (-1 top level, then each device): the first line of every key. */
        private final Map<Integer, Map<String, Integer>> keys = new HashMap<>();
        private final List<int[]> deviceSpans = new ArrayList<>();

        Lines(String text) {
            lines = text.split("\n", -1);
            int table = -1;
            int start = 0;
            boolean inArray = false;
            for (int i = 0; i < lines.length; i++) {
                String l = lines[i];
                if (!inArray && HEADER.matcher(l).find()) {
                    if (table >= 0) {
                        deviceSpans.add(new int[] {start, i});
                    }
                    table++;
                    start = i;
                    keys.computeIfAbsent(table, t -> new HashMap<>()).putIfAbsent("[[device]]", i + 1);
                    continue;
                }
                if (!inArray && OTHER_HEADER.matcher(l).find()) {
                    Matcher m = HEADER_NAME.matcher(l);
                    if (m.find()) {
                        keys.computeIfAbsent(-1, t -> new HashMap<>()).putIfAbsent(m.group(1), i + 1);
                    }
                    continue;
                }
                Matcher m = KEY.matcher(l);
                if (!inArray && m.find()) {
                    keys.computeIfAbsent(table, t -> new HashMap<>()).putIfAbsent(m.group(1), i + 1);
                    inArray = opensArray(l.substring(m.end()));
                } else if (inArray && l.contains("]")) {
                    inArray = false;
                }
            }
            if (table >= 0) {
                deviceSpans.add(new int[] {start, lines.length});
            }
        }

        private static boolean opensArray(String value) {
            String v = value.strip();
            return v.startsWith("[") && !v.contains("]");
        }

        @Override
        public int line(int device, String key, String text) {
            if (text != null && device >= 0 && device < deviceSpans.size()) {
                int[] span = deviceSpans.get(device);
                for (int i = span[0]; i < span[1]; i++) {
                    if (lines[i].contains("\"" + text + "\"") || lines[i].contains("'" + text + "'")) {
                        return i + 1;
                    }
                }
            }
            Map<String, Integer> table = keys.get(device);
            Integer line = table == null ? null : table.get(key);
            if (line == null && table != null) {
                line = table.get("[[device]]");
            }
            return line == null ? 0 : line;
        }
    }
}
