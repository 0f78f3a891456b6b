package io.vportd.console;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vportd.console.api.ApiProtocol;
import io.vportd.console.api.ManagementServer;
import io.vportd.console.cli.DeviceConfig;
import io.vportd.console.cli.PortSpecParser;
import io.vportd.console.control.PortConfig;
import io.vportd.console.ctl.ApiClient;
import io.vportd.sys.EventFd;
import io.vportd.sys.Fd;
import io.vportd.sys.UnixSockets;
import io.vportd.testsupport.Await;
import io.vportd.vhost.Request;
import io.vportd.vhost.testing.TestFrontend;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Several devices in one process ({@link Devices}, issue 13): a hostile frontend on one device ends
 * only its own sessions while the other device's frontend, host client and management go on; the
 * management protocol addresses devices, adds and removes them, and labels their metrics and
 * events.
 */
class DevicesTest {

    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final int MAX_PORTS = 2;
    private static final int QUEUES = 2 * (MAX_PORTS + 1);
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private Devices devices;
    private final List<AutoCloseable> closers = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        for (AutoCloseable c : closers.reversed()) {
            c.close();
        }
        if (devices != null) {
            devices.close();
        }
    }

    private DeviceConfig config(String id, String... ports) {
        List<PortConfig> parsed = new ArrayList<>();
        for (String p : ports) {
            parsed.add(PortSpecParser.parse(p));
        }
        return new DeviceConfig(id, dir.resolve(id + ".sock"), MAX_PORTS, parsed, false);
    }

    private Devices twoDevices() throws IOException {
        devices = new Devices(null, null, dir.resolve("no-journal").toString(), 1); // both devices on one loop
        devices.start(config("a", "nr=0,console,null", "nr=1,name=agent,socket=" + dir.resolve("a-agent.sock")));
        devices.start(config("b", "nr=0,console,null", "nr=1,name=agent,socket=" + dir.resolve("b-agent.sock")));
        return devices;
    }

    private SocketChannel client(Path socket) throws IOException {
        SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
        c.connect(UnixDomainSocketAddress.of(socket));
        closers.add(c);
        return c;
    }

    private static void startRings(TestFrontend fe) throws IOException {
        for (int q = 0; q < QUEUES; q++) {
            long base = 0x10000L * (q + 1);
            fe.startQueue(q, base, base + 0x1000, base + 0x2000, 64);
        }
    }

    /** Device b's frontend is answered, its rings restart, its host client saw no end of file, its ports list. */
    private void assertBServes(TestFrontend b, SocketChannel bAgent, String after) throws IOException {
        assertEquals(0, b.stopQueue(2), "device b's frontend is answered after " + after);
        b.startQueue(2, 0x30000, 0x31000, 0x32000, 64);
        bAgent.configureBlocking(false);
        assertEquals(0, bAgent.read(ByteBuffer.allocate(8)), "device b's host client saw no end of file after " + after);
        assertEquals(2, devices.device("b").listPorts().size(), "device b lists its ports after " + after);
    }

    private long failedSessions(String device) {
        for (String line : devices.metrics().split("\n")) {
            if (line.startsWith("vportd_vhost_sessions_failed_total{device=\"" + device + "\"}")) {
                return Long.parseLong(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        throw new AssertionError("no failed-session counter for device " + device + ":\n" + devices.metrics());
    }

    @Test
    void aHostileFrontendOnOneDeviceEndsOnlyItsOwnSessions() throws Exception {
        twoDevices();
        Path aSock = dir.resolve("a.sock");
        TestFrontend b = TestFrontend.connect(dir.resolve("b.sock"), QUEUES, 12);
        closers.add(b);
        startRings(b);
        SocketChannel bAgent = client(dir.resolve("b-agent.sock"));
        Await.until("b's host client to be connected", WAIT,
                () -> devices.device("b").listPorts().get(1).hostConnected());

        // 1. A header of a protocol version nobody speaks.
        try (TestFrontend raw = TestFrontend.connectRaw(aSock, TestFrontend.Options.defaults(QUEUES, 12))) {
            raw.send(Request.GET_FEATURES.code, 2, new byte[0]);
            assertTrue(raw.awaitDisconnect(WAIT), "device a hung up on a bad header");
        }
        assertBServes(b, bAgent, "a bad header on a");
        // 2. A message cut short, then end of file.
        try (TestFrontend raw = TestFrontend.connectRaw(aSock, TestFrontend.Options.defaults(QUEUES, 12))) {
            raw.sendBytes(new byte[] {1, 0, 0});
        }
        assertBServes(b, bAgent, "a truncated message on a");
        // 3. More descriptors than any message may carry.
        try (TestFrontend raw = TestFrontend.connectRaw(aSock, TestFrontend.Options.defaults(QUEUES, 12));
             Fd e = EventFd.create(0, 0)) {
            int[] nine = new int[9];
            java.util.Arrays.fill(nine, e.fd());
            raw.send(Request.SET_OWNER.code, 1, new byte[0], nine);
            assertTrue(raw.awaitDisconnect(WAIT), "device a hung up on a descriptor flood");
        }
        assertBServes(b, bAgent, "a descriptor flood on a");
        // 4. A ring outside guest memory.
        try (TestFrontend raw = TestFrontend.connect(aSock, QUEUES, 12)) {
            long outside = raw.guestRam().byteSize() + 0x10000;
            try {
                raw.startQueue(0, outside, outside + 0x1000, outside + 0x2000, 64);
            } catch (IOException expected) {
                // refused: the session ends
            }
            assertTrue(raw.awaitDisconnect(WAIT), "device a hung up on a ring outside guest memory");
        }
        assertBServes(b, bAgent, "a ring outside guest memory on a");
        // 5. A frontend that stops in the middle of a message and stays: b and the API are not held up by it.
        try (Fd stalled = UnixSockets.connect(aSock)) {
            try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                java.lang.foreign.MemorySegment half = arena.allocate(3);
                io.vportd.sys.Io.write(stalled.fd(), half.address(), 3);
            }
            assertBServes(b, bAgent, "a stalled frontend on a");
            assertEquals(2, devices.device("a").listPorts().size(), "device a's own ports list while its frontend stalls");
        }
        Await.until("device a to count its bad sessions", WAIT, () -> failedSessions("a") >= 5);
        assertEquals(0, failedSessions("b"), "device b had no failed session");
        // Device a takes the next, well-behaved frontend.
        try (TestFrontend again = TestFrontend.connect(aSock, QUEUES, 12)) {
            startRings(again);
            assertEquals(0, again.stopQueue(1));
        }
        assertBServes(b, bAgent, "device a's next frontend");
    }

    @Test
    void theProtocolAddressesAddsAndRemovesDevicesAndLabelsTheirEventsAndMetrics() throws Exception {
        twoDevices();
        Path api = dir.resolve("api.sock");
        ManagementServer server = ManagementServer.start(api, devices);
        closers.add(server);
        devices.onEvents(server::onPortEvent);
        try (ApiClient c = ApiClient.connect(api); ApiClient events = ApiClient.connect(api)) {
            assertTrue(events.call(events.request("subscribe")).path("ok").asBoolean());
            JsonNode list = c.call(c.request("list-devices"));
            assertEquals(List.of("a", "b"), ids(list));
            assertEquals(dir.resolve("a.sock").toString(), list.path("devices").get(0).path("socket").asText());
            assertEquals(MAX_PORTS, list.path("devices").get(0).path("max-ports").asInt());

            // A port operation names its device when there are several.
            JsonNode ambiguous = c.call(c.request("list-ports"));
            assertEquals(ApiProtocol.INVALID_REQUEST, ambiguous.path("error").path("code").asText(), ambiguous::toString);
            assertTrue(ambiguous.path("error").path("message").asText().contains("name one with \"device\""));
            JsonNode unknown = c.call(c.request("list-ports").put("device", "zz"));
            assertEquals(ApiProtocol.NO_SUCH_DEVICE, unknown.path("error").path("code").asText());
            assertTrue(unknown.path("error").path("message").asText().contains("devices: a, b"), unknown::toString);

            JsonNode added = c.call(c.request("add-port").put("device", "b").put("spec", "nr=1,name=x,null"));
            assertTrue(added.has("error"), () -> "device b has a port 1 already: " + added);
            JsonNode removed = c.call(c.request("remove-port").put("device", "b").put("nr", 1));
            assertTrue(removed.path("ok").asBoolean(), removed::toString);
            JsonNode event = events.nextEvent();
            assertEquals("b", event.path("data").path("device").asText(), "the event names its device: " + event);
            assertEquals(1, devices.device("b").listPorts().size());
            assertEquals(2, devices.device("a").listPorts().size(), "device a is untouched");

            // add-device: checked against the others, then served.
            JsonNode clash = c.call(addDevice("c", dir.resolve("a.sock"), c));
            assertEquals(ApiProtocol.BAD_SPEC, clash.path("error").path("code").asText(), clash::toString);
            assertTrue(clash.path("error").path("message").asText().contains("same path"), clash::toString);
            com.fasterxml.jackson.databind.node.ObjectNode half = addDevice("d", dir.resolve("d.sock"), c);
            ((com.fasterxml.jackson.databind.node.ArrayNode) half.path("config").path("ports"))
                    .add("nr=0,socket=" + dir.resolve("a-agent.sock")); // device a's endpoint: refused
            JsonNode halfRefused = c.call(half);
            assertTrue(halfRefused.path("error").path("message").asText().contains("same path"), halfRefused::toString);
            JsonNode dFree = c.call(addDevice("d", dir.resolve("d.sock"), c));
            assertTrue(dFree.path("ok").asBoolean(), () -> "a refused device kept none of its claims: " + dFree);
            assertTrue(c.call(c.request("remove-device").put("device", "d")).path("ok").asBoolean());
            JsonNode twin = c.call(addDevice("a", dir.resolve("a2.sock"), c));
            assertTrue(twin.path("error").path("message").asText().contains("there is a device 'a' already"), twin::toString);
            JsonNode badKey = c.call(c.request("add-device").set("config", JSON.readTree("{\"id\":\"c\",\"sock\":\"/x\"}")));
            assertTrue(badKey.path("error").path("message").asText().contains("key 'sock': unknown device key"), badKey::toString);
            JsonNode ok = c.call(addDevice("c", dir.resolve("c.sock"), c));
            assertTrue(ok.path("ok").asBoolean(), ok::toString);
            assertEquals("c", ok.path("device").path("device").asText());
            assertTrue(Files.exists(dir.resolve("c.sock")), "device c listens");
            try (TestFrontend fe = TestFrontend.connect(dir.resolve("c.sock"), QUEUES, 12)) {
                fe.startQueue(0, 0x10000, 0x11000, 0x12000, 64);
                Await.until("list-devices to show c's frontend", WAIT, () -> connected(c, "c"));
                assertFalse(connected(c, "a"));

                String metrics = c.call(c.request("metrics")).path("metrics").asText();
                assertTrue(metrics.contains("vportd_ports{device=\"a\"} 2"), metrics);
                assertTrue(metrics.contains("vportd_ports{device=\"b\"} 1"), metrics);
                assertTrue(metrics.contains("vportd_ports{device=\"c\"} 1"), metrics);
                assertTrue(metrics.contains("vportd_devices 3"), metrics);
                assertTrue(metrics.contains("vportd_vhost_sessions_started_total{device=\"c\"} 1"), metrics);
                assertEquals(1, count(metrics, "# TYPE vportd_ports "), "one header per metric, however many devices");

                // remove-device: its frontend's connection ends, its socket goes, the others stay.
                JsonNode gone = c.call(c.request("remove-device").put("device", "c"));
                assertTrue(gone.path("ok").asBoolean(), gone::toString);
                assertTrue(fe.awaitDisconnect(WAIT), "device c's frontend was disconnected");
            }
            assertFalse(Files.exists(dir.resolve("c.sock")), "device c's socket is removed");
            assertEquals(List.of("a", "b"), ids(c.call(c.request("list-devices"))));
            JsonNode again = c.call(c.request("remove-device").put("device", "c"));
            assertEquals(ApiProtocol.NO_SUCH_DEVICE, again.path("error").path("code").asText());
            // A removed device's id and paths are free again; a refused add took nothing.
            JsonNode readded = c.call(addDevice("c", dir.resolve("c.sock"), c));
            assertTrue(readded.path("ok").asBoolean(), readded::toString);
            assertTrue(c.call(c.request("remove-device").put("device", "c")).path("ok").asBoolean());
            String after = c.call(c.request("metrics")).path("metrics").asText();
            assertTrue(after.contains("vportd_devices_added_total 5") && after.contains("vportd_devices_removed_total 3"), after);
        }
    }

    private static com.fasterxml.jackson.databind.node.ObjectNode addDevice(String id, Path socket, ApiClient c) {
        com.fasterxml.jackson.databind.node.ObjectNode r = c.request("add-device");
        com.fasterxml.jackson.databind.node.ObjectNode config = r.putObject("config");
        config.put("id", id).put("socket", socket.toString()).put("max-ports", MAX_PORTS);
        config.putArray("ports").add("nr=1,name=extra,null");
        return r;
    }

    private static List<String> ids(JsonNode list) {
        List<String> out = new ArrayList<>();
        list.path("devices").forEach(d -> out.add(d.path("device").asText()));
        return out;
    }

    private static boolean connected(ApiClient c, String id) {
        try {
            for (JsonNode d : c.call(c.request("list-devices")).path("devices")) {
                if (d.path("device").asText().equals(id)) {
                    return d.path("frontend-connected").asBoolean();
                }
            }
            return false;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static int count(String text, String what) {
        int n = 0;
        for (int i = text.indexOf(what); i >= 0; i = text.indexOf(what, i + 1)) {
            n++;
        }
        return n;
    }
}
