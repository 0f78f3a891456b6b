package io.vportd.console.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.cli.PortSpecParser;
import io.vportd.console.control.PortConfig;
import io.vportd.console.device.PortCounters;
import io.vportd.console.device.PortEvent;
import io.vportd.console.device.PortRequestException;
import io.vportd.console.device.PortStatus;
import io.vportd.console.device.RemovalReport;
import java.lang.System.Logger.Level;
import io.vportd.console.portlog.LogFollower;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * The management protocol, without I/O: one JSON request line in, one JSON response line out.
 *
 * <p>A request is an object {@code {"id": ANY, "op": OP, ...arguments}}; the response is
 * {@code {"id": ANY, "ok": true, ...results}} or {@code {"id": ANY, "error": {"code": CODE,
 * "message": TEXT}}}. {@code id} is echoed as given (null when the request had none or could not
 * be read). Unknown arguments are refused, so typos do not pass silently. Every port operation
 * (and {@code metrics}) takes an optional {@code device}: the id of the device it is for, needed
 * when the daemon serves more than one. Operations:
 * <ul>
 * <li>{@code list-devices}: answers {@code devices} (id, socket, max ports, port count, whether a
 *     frontend is connected).</li>
 * <li>{@code add-device}: {@code config}, an object with a {@code [[device]]} table's keys (see
 *     {@link io.vportd.console.cli.ConfigFile}); answers {@code device}.</li>
 * <li>{@code remove-device}: {@code device}; ends its frontend's connection and closes its
 *     endpoints, and tells the guest nothing.</li>
 * <li>{@code add-port}: either {@code "spec": "nr=5,name=x,socket=/p"} (the --port syntax) or the
 *     fields {@code nr}, {@code name}, {@code console}, {@code cols}, {@code rows},
 *     {@code resize-order}, {@code endpoint} (e.g. {@code "socket=/p"}); answers {@code port}.</li>
 * <li>{@code remove-port}: {@code nr} or {@code name}, optionally {@code drain-ms} (wait up to
 *     that long for the host to take guest output the port holds); answers {@code removed} with
 *     what happened to guest output still in flight.</li>
 * <li>{@code list-ports}: answers {@code ports}.</li>
 * <li>{@code resize}: {@code nr}, {@code cols}, {@code rows} (console ports).</li>
 * <li>{@code subscribe} / {@code unsubscribe}: port events on this connection, as lines
 *     {@code {"event": TYPE, "data": {...}, "timestamp": {"seconds": S, "microseconds": U}}};
 *     in a daemon of several devices {@code data} names the {@code device}.</li>
 * <li>{@code metrics}: answers {@code metrics}, the Prometheus text format (every device's,
 *     labelled {@code device} in a daemon of several, unless {@code device} names one).</li>
 * <li>{@code log}: {@code nr} or {@code name}, optionally {@code tail} (lines) and {@code follow};
 *     answers {@code data} (base64), the port's replay ring or its last lines; with follow, live
 *     output follows as {@code log} events and a {@code log-end} event says why it stopped.</li>
 * </ul>
 */
public final class ApiProtocol {

    private static final System.Logger LOG = System.getLogger("vportd.api");

    /** What a connection lets the protocol change about itself. */
    public interface Session {
        /** Starts (true) or stops (false) event delivery to this connection. */
        void subscribe(boolean on);

        /**
         * Forwards {@code follower}'s bytes of port {@code nr} to this connection as {@code log}
         * events, after the response to the current request. Connections that cannot refuse.
         */
        default void follow(int nr, LogFollower follower) {
            follower.cancel();
            throw new ApiException(INVALID_REQUEST, "this connection cannot follow a port's output");
        }
    }

    // Error codes on the wire.
    public static final String PARSE_ERROR = "parse-error";
    public static final String INVALID_REQUEST = "invalid-request";
    public static final String UNKNOWN_OP = "unknown-op";
    public static final String BAD_SPEC = "bad-spec";
    public static final String REQUEST_TOO_LONG = "request-too-long";
    public static final String INTERNAL_ERROR = "internal-error";
    public static final String NO_SUCH_DEVICE = "no-such-device";

    public static final List<String> OPS = List.of("add-port", "remove-port", "list-ports", "resize", "subscribe",
            "unsubscribe", "metrics", "log", "list-devices", "add-device", "remove-device");

    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private static final Set<String> ADD_FIELDS =
            Set.of("id", "op", "device", "spec", "nr", "name", "console", "cols", "rows", "resize-order", "endpoint");

    private final DeviceDirectory devices;

    /** The protocol for a daemon of one device. */
    public ApiProtocol(PortManager ports) {
        this(DeviceDirectory.single(ports, null));
    }

    public ApiProtocol(DeviceDirectory devices) {
        this.devices = devices;
    }

    /** Handles one request line; never throws; the result is one JSON line without the newline. */
    public String handle(String line, Session session) {
        JsonNode id = null;
        try {
            JsonNode request;
            try {
                request = JsonLine.read(line);
            } catch (JsonProcessingException e) {
                throw new ApiException(PARSE_ERROR, "malformed JSON: " + e.getOriginalMessage());
            }
            if (request == null) {
                throw new ApiException(PARSE_ERROR, "empty request");
            }
            if (!request.isObject()) {
                throw new ApiException(INVALID_REQUEST, "a request must be a JSON object, got " + request.getNodeType());
            }
            id = request.get("id");
            JsonNode op = request.get("op");
            if (op == null) {
                throw new ApiException(INVALID_REQUEST, "missing \"op\" (one of " + String.join(", ", OPS) + ")");
            }
            if (!op.isTextual()) {
                throw new ApiException(INVALID_REQUEST, "\"op\" must be a string");
            }
            ObjectNode result = dispatch(op.asText(), (ObjectNode) request, session);
            ObjectNode response = NODES.objectNode();
            response.set("id", id);
            response.put("ok", true);
            response.setAll(result);
            return JsonLine.write(response);
        } catch (ApiException e) {
            return error(id, e.code(), e.getMessage());
        } catch (PortRequestException e) {
            return error(id, e.reason().code(), e.getMessage());
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "management request failed unexpectedly: {0}", e.toString());
            return error(id, INTERNAL_ERROR, String.valueOf(e.getMessage()));
        }
    }

    /** An error response line. */
    public static String error(JsonNode id, String code, String message) {
        ObjectNode response = NODES.objectNode();
        response.set("id", id);
        ObjectNode err = response.putObject("error");
        err.put("code", code);
        err.put("message", message);
        return JsonLine.write(response);
    }

    private ObjectNode dispatch(String op, ObjectNode req, Session session) {
        ObjectNode out = NODES.objectNode();
        switch (op) {
            case "list-devices" -> {
                allowOnly(req, Set.of("id", "op"));
                ArrayNode list = out.putArray("devices");
                for (DeviceDirectory.DeviceInfo d : devices.listDevices()) {
                    list.add(deviceJson(d));
                }
                return out;
            }
            case "add-device" -> {
                allowOnly(req, Set.of("id", "op", "config"));
                JsonNode config = req.get("config");
                if (config == null || !config.isObject()) {
                    throw new ApiException(INVALID_REQUEST, "add-device needs \"config\": an object with the keys of a "
                            + "[[device]] table (id, socket, max-ports, allow-unsealed-memory, ports)");
                }
                io.vportd.console.cli.DeviceConfig c;
                try {
                    c = io.vportd.console.cli.ConfigFile.device(config, -1,
                            new io.vportd.console.cli.ConfigFile.Errors("add-device", io.vportd.console.cli.ConfigFile.Locator.NONE));
                } catch (IllegalArgumentException e) {
                    throw new ApiException(BAD_SPEC, e.getMessage());
                }
                out.set("device", deviceJson(devices.addDevice(c)));
                return out;
            }
            case "remove-device" -> {
                allowOnly(req, Set.of("id", "op", "device"));
                String id = text(req, "device", true);
                devices.removeDevice(id);
                out.put("removed", id);
                return out;
            }
            case "metrics" -> {
                allowOnly(req, Set.of("id", "op", "device"));
                String id = text(req, "device", false);
                out.put("metrics", id == null ? devices.metrics() : devices.device(id).metrics());
                return out;
            }
            case "subscribe", "unsubscribe" -> {
                allowOnly(req, Set.of("id", "op"));
                session.subscribe(op.equals("subscribe"));
                out.put("subscribed", op.equals("subscribe"));
                return out;
            }
            default -> {
            }
        }
        if (!OPS.contains(op)) {
            throw new ApiException(UNKNOWN_OP, "unknown op '" + op + "' (known: " + String.join(", ", OPS) + ")");
        }
        PortManager ports = devices.device(text(req, "device", false));
        switch (op) {
            case "add-port" -> {
                allowOnly(req, ADD_FIELDS);
                PortConfig config = addPortConfig(ports, req);
                out.set("port", portJson(ports.addPort(config)));
            }
            case "remove-port" -> {
                allowOnly(req, Set.of("id", "op", "device", "nr", "name", "drain-ms"));
                int nr = portByNrOrName(ports, req);
                int drainMs = req.has("drain-ms") ? integer(req, "drain-ms", true, 0, MAX_DRAIN_MS) : 0;
                boolean drained = drain(ports, nr, drainMs);
                ObjectNode removed = removalJson(ports.removePort(nr));
                if (drainMs > 0) {
                    removed.put("drained", drained);
                }
                out.set("removed", removed);
            }
            case "list-ports" -> {
                allowOnly(req, Set.of("id", "op", "device"));
                ArrayNode list = out.putArray("ports");
                for (PortStatus p : ports.listPorts()) {
                    list.add(portJson(p));
                }
            }
            case "resize" -> {
                allowOnly(req, Set.of("id", "op", "device", "nr", "name", "cols", "rows"));
                int nr = portByNrOrName(ports, req);
                int cols = integer(req, "cols", true, 1, 0xFFFF);
                int rows = integer(req, "rows", true, 1, 0xFFFF);
                ports.resize(nr, cols, rows);
                out.put("nr", nr);
                out.put("cols", cols);
                out.put("rows", rows);
            }
            case "log" -> {
                allowOnly(req, Set.of("id", "op", "device", "nr", "name", "tail", "follow"));
                int nr = portByNrOrName(ports, req);
                int tail = req.has("tail") ? integer(req, "tail", true, 0, MAX_TAIL_LINES) : -1;
                JsonNode follow = req.get("follow");
                if (follow != null && !follow.isBoolean()) {
                    throw new ApiException(INVALID_REQUEST, "\"follow\" must be true or false");
                }
                LogFollower follower = follow != null && follow.booleanValue()
                        ? new LogFollower(LogFollower.DEFAULT_CAPACITY) : null;
                byte[] ring;
                try {
                    ring = ports.readLog(nr, follower);
                } catch (RuntimeException e) {
                    if (follower != null) {
                        follower.cancel();
                    }
                    throw e;
                }
                byte[] shown = tail < 0 ? ring : lastLines(ring, tail);
                out.put("nr", nr);
                out.put("bytes", shown.length);
                out.put("data", Base64.getEncoder().encodeToString(shown));
                out.put("following", follower != null);
                if (follower != null) {
                    session.follow(nr, follower);
                }
            }
            default -> throw new ApiException(UNKNOWN_OP, "unknown op '" + op + "' (known: " + String.join(", ", OPS) + ")");
        }
        return out;
    }

    /** Most lines {@code log} may ask for with {@code tail}. */
    public static final int MAX_TAIL_LINES = 1_000_000;

    /** The last {@code n} lines of {@code b} (a partial last line counts as one). */
    static byte[] lastLines(byte[] b, int n) {
        if (n == 0) {
            return new byte[0];
        }
        int end = b.length;
        int i = end - 1;
        if (i >= 0 && b[i] == '\n') {
            i--; // the newline ending the last line
        }
        int lines = 0;
        for (; i >= 0; i--) {
            if (b[i] == '\n' && ++lines == n) {
                return java.util.Arrays.copyOfRange(b, i + 1, end);
            }
        }
        return b;
    }

    /** Longest wait a remove-port may ask for the host to take the guest's pending output. */
    public static final int MAX_DRAIN_MS = 60_000;
    private static final long DRAIN_POLL_MS = 20;

    /**
     * Waits up to {@code drainMs} until the port holds no guest output the host has not taken
     * (a slow host catching up). Returns true when it holds none.
     */
    private static boolean drain(PortManager ports, int nr, int drainMs) {
        long deadline = System.nanoTime() + drainMs * 1_000_000L;
        while (true) {
            PortStatus p = null;
            for (PortStatus s : ports.listPorts()) {
                if (s.id() == nr) {
                    p = s;
                }
            }
            if (p == null) {
                throw new PortRequestException(PortRequestException.Reason.NO_SUCH_PORT, "there is no port " + nr);
            }
            if (!p.holdingGuestData()) {
                return true;
            }
            if (System.nanoTime() - deadline >= 0) {
                return false;
            }
            try {
                Thread.sleep(DRAIN_POLL_MS); // a management request may wait; the data plane does not
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
    }

    private static void allowOnly(ObjectNode req, Set<String> allowed) {
        for (Iterator<String> it = req.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!allowed.contains(f)) {
                throw new ApiException(INVALID_REQUEST, "unknown argument \"" + f + "\" for op '" + req.get("op").asText()
                        + "'");
            }
        }
    }

    private static PortConfig addPortConfig(PortManager ports, ObjectNode req) {
        String spec;
        if (req.has("spec")) {
            for (String f : List.of("nr", "name", "console", "cols", "rows", "resize-order", "endpoint")) {
                if (req.has(f)) {
                    throw new ApiException(INVALID_REQUEST, "give either \"spec\" or the separate fields, not both (\""
                            + f + "\")");
                }
            }
            spec = text(req, "spec", true);
        } else {
            StringBuilder b = new StringBuilder("nr=").append(integer(req, "nr", true, 0, PortConfig.MAX_ID));
            String name = text(req, "name", false);
            if (name != null) {
                b.append(",name=").append(escape(name));
            }
            JsonNode console = req.get("console");
            if (console != null && !console.isBoolean()) {
                throw new ApiException(INVALID_REQUEST, "\"console\" must be true or false");
            }
            if (console != null && console.booleanValue()) {
                b.append(",console");
            }
            if (req.has("cols") || req.has("rows")) {
                b.append(",cols=").append(integer(req, "cols", true, 1, 0xFFFF));
                b.append(",rows=").append(integer(req, "rows", true, 1, 0xFFFF));
            }
            String order = text(req, "resize-order", false);
            if (order != null) {
                b.append(",resize-order=").append(escape(order));
            }
            String endpoint = text(req, "endpoint", true);
            b.append(',').append(escape(endpoint));
            spec = b.toString();
        }
        PortConfig config;
        try {
            config = PortSpecParser.parse(spec);
        } catch (IllegalArgumentException e) {
            throw new ApiException(BAD_SPEC, e.getMessage());
        }
        if (config.endpoint() instanceof EndpointSpec.Stdio) {
            throw new ApiException(BAD_SPEC, "stdio can only be given on the daemon's command line");
        }
        if (config.id() >= ports.maxPorts()) {
            throw new PortRequestException(PortRequestException.Reason.ID_OUT_OF_RANGE,
                    "port id " + config.id() + " is not below max ports " + ports.maxPorts());
        }
        return config;
    }

    /** A literal comma in a spec value is written twice. */
    private static String escape(String value) {
        return value.replace(",", ",,");
    }

    private static int portByNrOrName(PortManager ports, ObjectNode req) {
        boolean hasNr = req.has("nr");
        boolean hasName = req.has("name");
        if (hasNr == hasName) {
            throw new ApiException(INVALID_REQUEST, "give exactly one of \"nr\" and \"name\"");
        }
        if (hasNr) {
            int nr = integer(req, "nr", true, 0, Integer.MAX_VALUE);
            if (nr >= ports.maxPorts()) {
                throw new PortRequestException(PortRequestException.Reason.ID_OUT_OF_RANGE,
                        "port id " + nr + " is not below max ports " + ports.maxPorts());
            }
            return nr;
        }
        String name = text(req, "name", true);
        for (PortStatus p : ports.listPorts()) {
            if (name.equals(p.name())) {
                return p.id();
            }
        }
        throw new PortRequestException(PortRequestException.Reason.NO_SUCH_PORT, "there is no port named '" + name + "'");
    }

    private static int integer(ObjectNode req, String field, boolean required, int min, int max) {
        JsonNode n = req.get(field);
        if (n == null || n.isNull()) {
            if (required) {
                throw new ApiException(INVALID_REQUEST, "missing \"" + field + "\"");
            }
            return -1;
        }
        if (!n.isIntegralNumber() || !n.canConvertToLong()) {
            throw new ApiException(INVALID_REQUEST, "\"" + field + "\" must be an integer");
        }
        long v = n.longValue();
        if (v < min || v > max) {
            throw new ApiException(INVALID_REQUEST, "\"" + field + "\" must be " + min + ".." + max + ", got " + v);
        }
        return (int) v;
    }

    private static String text(ObjectNode req, String field, boolean required) {
        JsonNode n = req.get(field);
        if (n == null || n.isNull()) {
            if (required) {
                throw new ApiException(INVALID_REQUEST, "missing \"" + field + "\"");
            }
            return null;
        }
        if (!n.isTextual()) {
            throw new ApiException(INVALID_REQUEST, "\"" + field + "\" must be a string");
        }
        return n.asText();
    }

    // ------------------------------------------------------------------ result shapes

    public static ObjectNode portJson(PortStatus p) {
        ObjectNode o = NODES.objectNode();
        o.put("nr", p.id());
        if (p.name() == null) {
            o.putNull("name");
        } else {
            o.put("name", p.name());
        }
        o.put("console", p.console());
        o.put("endpoint", p.endpoint());
        o.put("guest-open", p.guestOpen());
        o.put("host-connected", p.hostConnected());
        o.put("holding-guest-data", p.holdingGuestData());
        PortCounters c = p.counters();
        ObjectNode toHost = o.putObject("to-host");
        toHost.put("bytes", c.get(PortCounters.BYTES_TO_HOST));
        toHost.put("chains", c.get(PortCounters.CHAINS_TO_HOST));
        ObjectNode toGuest = o.putObject("to-guest");
        toGuest.put("bytes", c.get(PortCounters.BYTES_TO_GUEST));
        toGuest.put("chains", c.get(PortCounters.CHAINS_TO_GUEST));
        o.put("held-waits", c.get(PortCounters.HELD_WAITS));
        o.put("console-dropped-bytes", c.get(PortCounters.CONSOLE_DROPPED_BYTES));
        o.put("discarded-bytes", c.get(PortCounters.DISCARDED_BYTES));
        o.put("host-write-errors", c.get(PortCounters.HOST_WRITE_ERRORS));
        if (p.log() == null) {
            o.putNull("log");
        } else {
            o.put("log", p.log());
        }
        o.put("log-dropped-bytes", c.get(PortCounters.LOG_DROPPED_BYTES));
        o.put("log-followers-dropped", c.get(PortCounters.LOG_FOLLOWERS_DROPPED));
        return o;
    }

    static ObjectNode removalJson(RemovalReport r) {
        ObjectNode o = NODES.objectNode();
        o.put("nr", r.id());
        if (r.name() == null) {
            o.putNull("name");
        } else {
            o.put("name", r.name());
        }
        o.put("guest-was-open", r.guestWasOpen());
        o.put("delivered-bytes", r.deliveredBytes());
        o.put("undelivered-bytes", r.undeliveredBytes());
        o.put("undelivered-chains", r.undeliveredChains());
        return o;
    }

    static ObjectNode deviceJson(DeviceDirectory.DeviceInfo d) {
        ObjectNode o = NODES.objectNode();
        o.put("device", d.id());
        o.put("socket", d.socket() == null ? null : d.socket().toString());
        o.put("max-ports", d.maxPorts());
        o.put("ports", d.ports());
        o.put("frontend-connected", d.frontendConnected());
        return o;
    }

    /** An event line. */
    public static String eventLine(PortEvent e, long epochMicros) {
        return eventLine(null, e, epochMicros);
    }

    /** An event line of device {@code device} (null: a daemon of one device, whose events name none). */
    public static String eventLine(String device, PortEvent e, long epochMicros) {
        ObjectNode o = NODES.objectNode();
        o.put("event", e.type());
        ObjectNode data = o.putObject("data");
        if (device != null) {
            data.put("device", device);
        }
        data.put("nr", e.id());
        if (e.name() == null) {
            data.putNull("name");
        } else {
            data.put("name", e.name());
        }
        if (e.detail() != null) {
            data.put("detail", e.detail());
        }
        ObjectNode ts = o.putObject("timestamp");
        ts.put("seconds", epochMicros / 1_000_000);
        ts.put("microseconds", epochMicros % 1_000_000);
        return JsonLine.write(o);
    }

}
