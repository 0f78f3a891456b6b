package io.vportd.console.handover;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vportd.console.cli.PortSpecParser;
import io.vportd.console.control.MachineState;
import io.vportd.console.control.PortConfig;
import io.vportd.console.control.PortState;
import io.vportd.console.device.DeviceSnapshot;
import io.vportd.console.endpoint.Handed;
import io.vportd.vhost.Session;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The versioned state record a live hand-over carries, as JSON, and the list of descriptors that
 * goes with it: every descriptor in the record is an index into that list. Writing turns the
 * handing process's descriptor numbers into indexes; reading turns the indexes into the numbers
 * received in the taking process.
 *
 * <p>A reader refuses a record whose {@code version} it does not know (newer writers may add
 * fields; an unknown version means fields changed meaning).
 */
final class HandoverState {

    static final String FORMAT = "vportd-handover";
    /** The state record version this build writes and reads for a daemon of one device. */
    static final int VERSION = 1;
    /**
     * The version of a record of several devices ({@code --config}). A different number, so that
     * a process expecting one kind never reads the other as its own.
     */
    static final int DEVICES_VERSION = 2;

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The parts of a daemon a hand-over describes. */
    record Daemon(String socketPath, String apiSocket, String metricsListen, boolean allowUnsealedMemory,
                  int handoverListenerFd, int vhostListenerFd, int vhostConnectionFd, List<Session.Replay> replay,
                  DeviceSnapshot device, Map<String, Long> counters) {
    }

    /**
     * A daemon of several devices ({@code --config}).
     *
     * @param handoverSocket     where it listened for the hand-over (the next process listens there too)
     * @param handoverListenerFd that socket's listening descriptor
     * @param devices            every device, in the order they started; each one's apiSocket and
     *                           metricsListen are null and its handoverListenerFd -1
     * @param counters           the process's own counters (the devices' are in each device)
     */
    record Daemons(String apiSocket, String metricsListen, String handoverSocket, int handoverListenerFd,
                   List<Named> devices, Map<String, Long> counters) {
    }

    /** One device of a {@link Daemons}. */
    record Named(String id, Daemon device) {
    }

    private HandoverState() {
    }

    /** The record and the descriptors it refers to, in index order. */
    record Encoded(byte[] json, int[] fds) {
    }

    static Encoded encode(Daemon d) {
        List<Integer> fds = new ArrayList<>();
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.put("version", VERSION);
        root.put("socketPath", d.socketPath());
        root.put("apiSocket", d.apiSocket());
        root.put("metricsListen", d.metricsListen());
        root.put("allowUnsealedMemory", d.allowUnsealedMemory());
        root.put("handoverListener", index(fds, d.handoverListenerFd()));
        encodeDevice(root, d, fds);
        return written(root, fds);
    }

    /**
     * A daemon of several devices ({@code --config}): version {@link #DEVICES_VERSION}, the
     * daemon's own facts at the top and a list of devices, each in the per-device layout of a
     * version 1 record (socketPath, allowUnsealedMemory, vhost, device, counters) plus its id.
     * Every device's descriptors are indexes into the one list.
     */
    static Encoded encode(Daemons d) {
        List<Integer> fds = new ArrayList<>();
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.put("version", DEVICES_VERSION);
        root.put("apiSocket", d.apiSocket());
        root.put("metricsListen", d.metricsListen());
        root.put("handoverSocket", d.handoverSocket());
        root.put("handoverListener", index(fds, d.handoverListenerFd()));
        ObjectNode shared = root.putObject("counters");
        d.counters().forEach(shared::put);
        ArrayNode list = root.putArray("devices");
        for (Named n : d.devices()) {
            ObjectNode o = list.addObject();
            o.put("id", n.id());
            o.put("socketPath", n.device().socketPath());
            o.put("allowUnsealedMemory", n.device().allowUnsealedMemory());
            encodeDevice(o, n.device(), fds);
        }
        return written(root, fds);
    }

    private static Encoded written(ObjectNode root, List<Integer> fds) {
        int[] list = fds.stream().mapToInt(Integer::intValue).toArray();
        try {
            return new Encoded(JSON.writeValueAsBytes(root), list);
        } catch (IOException e) {
            throw new IllegalStateException("cannot write the hand-over record", e);
        }
    }

    /** One device's session, ports and counters into {@code root} (a version 1 record, or one of a list). */
    private static void encodeDevice(ObjectNode root, Daemon d, List<Integer> fds) {
        ObjectNode vhost = root.putObject("vhost");
        vhost.put("listener", index(fds, d.vhostListenerFd()));
        vhost.put("connection", index(fds, d.vhostConnectionFd()));
        ArrayNode replay = vhost.putArray("replay");
        for (Session.Replay r : d.replay()) {
            ObjectNode m = replay.addObject();
            m.put("request", r.request());
            m.put("payload", Base64.getEncoder().encodeToString(r.payload()));
            ArrayNode f = m.putArray("fds");
            for (int fd : r.fds()) {
                f.add(index(fds, fd));
            }
        }
        DeviceSnapshot s = d.device();
        ObjectNode dev = root.putObject("device");
        dev.put("maxPorts", s.maxPorts());
        dev.put("deviceReadySeen", s.deviceReadySeen());
        dev.put("frozenAtNanos", s.frozenAtNanos());
        MachineState c = s.control();
        ObjectNode control = dev.putObject("control");
        control.put("deviceReady", c.deviceReady());
        control.put("multiport", c.multiport());
        control.put("sizeNegotiated", c.sizeNegotiated());
        control.put("cursor", c.cursor());
        ArrayNode cports = control.putArray("ports");
        for (MachineState.PortRecord r : c.ports()) {
            ObjectNode p = cports.addObject();
            p.put("config", PortSpecParser.format(r.config()));
            p.put("state", r.state().name());
            p.put("guestOpen", r.guestOpen());
            p.put("hostConnected", r.hostConnected());
            p.put("cols", r.cols());
            p.put("rows", r.rows());
            p.put("pending", r.pending());
            p.put("openSent", r.openSent());
            p.put("sentCols", r.sentCols());
            p.put("sentRows", r.sentRows());
            p.put("announcedBeforeReset", r.announcedBeforeReset());
            p.put("reAdd", r.reAdd() == null ? null : PortSpecParser.format(r.reAdd()));
            p.put("reAddHostConnected", r.reAddHostConnected());
        }
        ArrayNode ports = dev.putArray("ports");
        for (DeviceSnapshot.Port p : s.ports()) {
            ObjectNode o = ports.addObject();
            o.put("config", PortSpecParser.format(p.config()));
            o.put("added", p.added());
            o.put("carriedHead", p.carriedHead());
            o.put("carriedAvail", p.carriedAvail());
            o.put("carriedTaken", p.carriedTaken());
            o.put("consoleBacklog", Base64.getEncoder().encodeToString(p.consoleBacklog()));
            o.put("terminalSize", p.terminalSize());
            o.put("replay", Base64.getEncoder().encodeToString(p.replay()));
            ArrayNode pc = o.putArray("counters");
            for (long v : p.counters()) {
                pc.add(v);
            }
            ObjectNode efds = o.putObject("fds");
            p.endpoint().fds().forEach((role, fd) -> efds.put(role, index(fds, fd)));
            ObjectNode facts = o.putObject("facts");
            p.endpoint().facts().forEach(facts::put);
        }
        ObjectNode counters = root.putObject("counters");
        d.counters().forEach(counters::put);
        ArrayNode removing = dev.putArray("removing");
        s.removing().forEach(r -> removing.add(PortSpecParser.format(r)));
    }

    private static int index(List<Integer> fds, int fd) {
        if (fd < 0) {
            return -1;
        }
        fds.add(fd);
        return fds.size() - 1;
    }

    /** The record's version, or a refusal naming what is wrong with it. */
    static JsonNode parse(byte[] json) throws IOException {
        return parse(json, VERSION);
    }

    /**
     * The record, if it is of {@code version}: {@link #VERSION} for one device, {@link
     * #DEVICES_VERSION} for a daemon of several. Otherwise a refusal naming what is wrong with it.
     */
    static JsonNode parse(byte[] json, int version) throws IOException {
        JsonNode root = JSON.readTree(json);
        if (root == null || !FORMAT.equals(root.path("format").asText())) {
            throw new IOException("not a vportd hand-over record");
        }
        int v = root.path("version").asInt(-1);
        if (v != version) {
            throw new IOException("hand-over record version " + v + " is not supported by this vportd (it reads version "
                    + version + (version == DEVICES_VERSION ? ", a daemon of several devices" : ", a single device")
                    + "); upgrade in steps or use a matching build");
        }
        return root;
    }

    static int fdCount(JsonNode root) {
        return root.path("fdCount").asInt(-1);
    }

    /** Reads a parsed record back; {@code fds} are the received descriptor numbers in index order. */
    static Daemon decode(JsonNode root, int[] fds) throws IOException {
        try {
            return decodeDevice(root, fds, text(root.get("apiSocket")), text(root.get("metricsListen")),
                    fd(fds, root.required("handoverListener").asInt()));
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new IOException("the hand-over record is malformed: " + e.getMessage(), e);
        }
    }

    /** Reads a parsed record of several devices back ({@link #DEVICES_VERSION}); descriptors as {@link #decode}. */
    static Daemons decodeDevices(JsonNode root, int[] fds) throws IOException {
        String where = "the hand-over record";
        try {
            List<Named> devices = new ArrayList<>();
            java.util.Set<String> ids = new java.util.HashSet<>();
            JsonNode list = root.required("devices");
            if (!list.isArray()) {
                throw new IllegalArgumentException("devices is not a list");
            }
            for (JsonNode o : list) {
                String id = o.required("id").asText();
                where = "device " + id + " in the hand-over record";
                io.vportd.console.cli.DeviceConfig.checkId(id);
                if (!ids.add(id)) {
                    throw new IllegalArgumentException("device " + id + " is listed twice");
                }
                devices.add(new Named(id, decodeDevice(o, fds, null, null, -1)));
            }
            where = "the hand-over record";
            return new Daemons(text(root.get("apiSocket")), text(root.get("metricsListen")),
                    text(root.get("handoverSocket")), fd(fds, root.required("handoverListener").asInt()), devices,
                    counters(root));
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new IOException(where + " is malformed: " + e.getMessage(), e);
        }
    }

    private static Map<String, Long> counters(JsonNode root) {
        Map<String, Long> counters = new java.util.LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.path("counters").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            counters.put(e.getKey(), e.getValue().asLong());
        }
        return counters;
    }

    private static Daemon decodeDevice(JsonNode root, int[] fds, String apiSocket, String metricsListen,
                                       int handoverListenerFd) {
        JsonNode vhost = root.required("vhost");
        List<Session.Replay> replay = new ArrayList<>();
        for (JsonNode m : vhost.required("replay")) {
            JsonNode f = m.required("fds");
            int[] list = new int[f.size()];
            for (int i = 0; i < list.length; i++) {
                list[i] = fd(fds, f.get(i).asInt());
            }
            replay.add(new Session.Replay(m.required("request").asInt(),
                    Base64.getDecoder().decode(m.required("payload").asText()), list));
        }
        JsonNode dev = root.required("device");
        JsonNode control = dev.required("control");
        List<MachineState.PortRecord> records = new ArrayList<>();
        for (JsonNode p : control.required("ports")) {
            JsonNode reAdd = p.get("reAdd");
            records.add(new MachineState.PortRecord(PortSpecParser.parse(p.required("config").asText()),
                    PortState.valueOf(p.required("state").asText()), p.required("guestOpen").asBoolean(),
                    p.required("hostConnected").asBoolean(), p.required("cols").asInt(), p.required("rows").asInt(),
                    p.required("pending").asInt(), p.required("openSent").asBoolean(), p.required("sentCols").asInt(),
                    p.required("sentRows").asInt(), p.required("announcedBeforeReset").asBoolean(),
                    reAdd == null || reAdd.isNull() ? null : PortSpecParser.parse(reAdd.asText()),
                    p.required("reAddHostConnected").asBoolean()));
        }
        MachineState machine = new MachineState(control.required("deviceReady").asBoolean(),
                control.required("multiport").asBoolean(), control.required("sizeNegotiated").asBoolean(),
                control.required("cursor").asInt(), records);
        List<DeviceSnapshot.Port> ports = new ArrayList<>();
        for (JsonNode o : dev.required("ports")) {
            Handed h = new Handed();
            for (Iterator<Map.Entry<String, JsonNode>> it = o.required("fds").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                h.fd(e.getKey(), fd(fds, e.getValue().asInt()));
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = o.required("facts").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                h.fact(e.getKey(), e.getValue().asText());
            }
            JsonNode pc = o.path("counters");
            long[] portCounters = new long[pc.size()];
            for (int i = 0; i < portCounters.length; i++) {
                portCounters[i] = pc.get(i).asLong();
            }
            ports.add(new DeviceSnapshot.Port(PortSpecParser.parse(o.required("config").asText()),
                    o.required("added").asBoolean(), o.required("carriedHead").asInt(),
                    o.required("carriedAvail").asInt(), o.required("carriedTaken").asLong(),
                    Base64.getDecoder().decode(o.required("consoleBacklog").asText()),
                    o.required("terminalSize").asInt(), h, portCounters,
                    Base64.getDecoder().decode(o.path("replay").asText(""))));
        }
        List<PortConfig> removing = new ArrayList<>();
        for (JsonNode r : dev.required("removing")) {
            removing.add(PortSpecParser.parse(r.asText()));
        }
        DeviceSnapshot snapshot = new DeviceSnapshot(dev.required("maxPorts").asInt(), machine,
                dev.required("deviceReadySeen").asBoolean(), ports, removing, dev.required("frozenAtNanos").asLong());
        return new Daemon(root.required("socketPath").asText(), apiSocket, metricsListen,
                root.path("allowUnsealedMemory").asBoolean(false), handoverListenerFd,
                fd(fds, vhost.required("listener").asInt()), fd(fds, vhost.required("connection").asInt()), replay,
                snapshot, counters(root));
    }

    private static String text(JsonNode n) {
        return n == null || n.isNull() ? null : n.asText();
    }

    private static int fd(int[] fds, int index) {
        if (index == -1) {
            return -1;
        }
        if (index < 0 || index >= fds.length) {
            throw new IllegalArgumentException("descriptor index " + index + " outside the " + fds.length + " received");
        }
        return fds[index];
    }
}
