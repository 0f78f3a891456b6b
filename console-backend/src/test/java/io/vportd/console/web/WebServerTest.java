package io.vportd.console.web;

import static io.vportd.console.web.WsFramesTest.frame;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.api.PortManager;
import io.vportd.console.control.PortConfig;
import io.vportd.console.device.PortCounters;
import io.vportd.console.device.PortEvent;
import io.vportd.console.device.PortStatus;
import io.vportd.console.device.RemovalReport;
import io.vportd.console.endpoint.Endpoint;
import io.vportd.console.endpoint.EndpointHost;
import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.endpoint.Endpoints;
import io.vportd.console.portlog.LogFollower;
import io.vportd.sys.Io;
import io.vportd.testsupport.Await;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The web console over real sockets against a stand-in device: the token, the session cookie,
 * Host and Origin checks, the upgrade, the replay ring first, one writer and read-only viewers,
 * resizes, and bad input (oversized and malformed frames, garbage, a browser that never reads).
 */
class WebServerTest {

    static final Duration WAIT = Duration.ofSeconds(30);
    static final String TOKEN = "test-token-0123456789";
    static final int CONSOLE = 1;

    /** The device as the web console sees it: port 1 a console with a replay ring, port 2 a generic port. */
    final class FakePorts implements PortManager {
        final List<LogFollower> followers = new CopyOnWriteArrayList<>();
        final List<int[]> resizes = new CopyOnWriteArrayList<>();
        volatile byte[] replay = "boot log\r\n".getBytes(StandardCharsets.UTF_8);

        @Override public int maxPorts() { return 4; }
        @Override public List<PortStatus> listPorts() {
            return List.of(new PortStatus(CONSOLE, null, true, "web", true, true, false, counters),
                    new PortStatus(2, "org.example.two", false, "null", false, true, false, new PortCounters()));
        }
        @Override public PortStatus addPort(PortConfig config) { throw new UnsupportedOperationException(); }
        @Override public RemovalReport removePort(int id) { throw new UnsupportedOperationException(); }
        @Override public void resize(int id, int cols, int rows) { resizes.add(new int[] {id, cols, rows}); }
        @Override public String metrics() { return ""; }
        @Override public byte[] readLog(int id, LogFollower follower) {
            followers.add(follower);
            return replay;
        }
    }

    final PortCounters counters = new PortCounters();
    FakePorts ports;
    WebServer web;
    int port;
    String origin;
    Endpoint endpoint;

    @BeforeEach
    void start() throws IOException {
        ports = new FakePorts();
        web = WebServer.start("127.0.0.1", 0, TOKEN, ports, "0");
        port = web.port();
        origin = "http://127.0.0.1:" + port;
    }

    @AfterEach
    void stop() {
        web.close();
        if (endpoint != null) {
            endpoint.close();
        }
    }

    String login() throws IOException {
        try (WsTestClient c = new WsTestClient(port)) {
            String body = "token=" + TOKEN + "&next=%2Fd%2F0%2Fport%2F1";
            assertEquals(303, c.request("POST /login HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nOrigin: " + origin
                    + "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + body.length()
                    + "\r\n\r\n" + body));
            String cookie = c.header("Set-Cookie");
            assertTrue(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), cookie);
            assertEquals("/d/0/port/1", c.header("Location"));
            assertFalse(c.head.contains(TOKEN), "the token never comes back");
            return cookie.substring(0, cookie.indexOf(';'));
        }
    }

    int status(String request) throws IOException {
        try (WsTestClient c = new WsTestClient(port)) {
            return c.request(request);
        }
    }

    WsTestClient terminal(String cookie, String query) throws IOException {
        WsTestClient c = new WsTestClient(port);
        assertEquals(101, c.request(WsTestClient.upgrade("/ws/d/0/port/" + CONSOLE + query, port, cookie, origin)));
        return c;
    }

    @Test
    void withoutTheTokenPagesAndSocketsAre401() throws IOException {
        assertEquals(401, status(WsTestClient.get("/", port, null, null)));
        assertEquals(401, status(WsTestClient.get("/d/0/", port, "vportd_session=forged", null)));
        assertEquals(401, status(WsTestClient.upgrade("/ws/d/0/events", port, null, origin)));
        String body = "token=wrong-token-0000000&next=/d/0/";
        assertEquals(401, status("POST /login HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nOrigin: " + origin
                + "\r\nContent-Length: " + body.length() + "\r\n\r\n" + body));
        assertEquals(4, counter("vportd_web_auth_failures_total"), "each refusal counted");
    }

    @Test
    void aForeignOriginOrHostIs403EvenWithASession() throws IOException {
        String cookie = login();
        assertEquals(200, status(WsTestClient.get("/d/0/", port, cookie, null)));
        assertEquals(403, status(WsTestClient.upgrade("/ws/d/0/events", port, cookie, "http://evil.example")));
        assertEquals(403, status(WsTestClient.upgrade("/ws/d/0/events", port, cookie, null)));
        assertEquals(403, status(WsTestClient.upgrade("/ws/d/0/events", port, cookie, "http://127.0.0.1:" + (port + 1))));
        assertEquals(403, status("GET /d/0/ HTTP/1.1\r\nHost: rebound.example:" + port + "\r\nCookie: " + cookie + "\r\n\r\n"));
        String body = "token=" + TOKEN;
        assertEquals(403, status("POST /login HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nOrigin: http://evil.example"
                + "\r\nContent-Length: " + body.length() + "\r\n\r\n" + body));
    }

    @Test
    void theUpgradeAnswersTheKeyAndTheReplayComesFirst() throws IOException {
        String cookie = login();
        try (WsTestClient c = terminal(cookie, "")) {
            assertEquals(WebRoutes.accept("MDEyMzQ1Njc4OWFiY2RlZg=="), c.header("Sec-WebSocket-Accept"));
            assertEquals("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", WebRoutes.accept("dGhlIHNhbXBsZSBub25jZQ==")); // RFC 6455's example
            String hello = c.text();
            assertTrue(hello.contains("\"writer\":true") && hello.contains("\"console\":true"), hello);
            Object[] f = c.frame();
            assertEquals(WsFrames.OP_BINARY, f[0]);
            assertArrayEquals("boot log\r\n".getBytes(StandardCharsets.UTF_8), (byte[]) f[1]);
            LogFollower follower = Await.value("a follower", WAIT, () -> ports.followers.stream().findFirst());
            assertTrue(follower.offer("live".getBytes(StandardCharsets.UTF_8), 0, 4));
            assertArrayEquals("live".getBytes(StandardCharsets.UTF_8), (byte[]) c.frame()[1]);
        }
    }

    @Test
    void oneWriterTypesViewersCannotAndAViewerCanTakeOver() throws Exception {
        endpoint = Endpoints.create(new EndpointSpec.Web(), "port 1");
        endpoint.open();
        endpoint.start(new EndpointHost() {
            @Override public void watch(int fd, int events, int p, int role) { }
            @Override public void unwatch(int fd) { }
            @Override public void hostConnected(int p) { }
        }, CONSOLE);
        String cookie = login();
        try (WsTestClient writer = terminal(cookie, ""); WsTestClient viewer = terminal(cookie, "?role=view")) {
            assertTrue(writer.text().contains("\"writer\":true"));
            String hello = viewer.text();
            assertTrue(hello.contains("\"writer\":false") && hello.contains("\"input\":true"), hello);
            viewer.send(frame(0x82, "rm -rf /\r".getBytes(StandardCharsets.UTF_8)));
            assertEquals("{\"type\":\"read-only\"}", viewer.text());
            viewer.send(frame(0x81, "{\"type\":\"resize\",\"cols\":10,\"rows\":5}".getBytes(StandardCharsets.UTF_8)));
            writer.send(frame(0x82, "echo $((6*7))\r".getBytes(StandardCharsets.UTF_8)));
            writer.send(frame(0x81, "{\"type\":\"resize\",\"cols\":132,\"rows\":43}".getBytes(StandardCharsets.UTF_8)));
            Await.until("the writer's resize", WAIT, () -> !ports.resizes.isEmpty());
            assertEquals(1, ports.resizes.size(), "the viewer's resize was not applied");
            assertArrayEquals(new int[] {CONSOLE, 132, 43}, ports.resizes.get(0));
            assertEquals("echo $((6*7))\r", readPipe(endpoint.inputFd(), 14), "only the writer's bytes reach the port");

            viewer.send(frame(0x81, "{\"type\":\"take\"}".getBytes(StandardCharsets.UTF_8)));
            assertEquals("{\"type\":\"role\",\"writer\":true}", viewer.text());
            assertEquals("{\"type\":\"role\",\"writer\":false}", writer.text());
            writer.send(frame(0x82, "x".getBytes(StandardCharsets.UTF_8)));
            assertEquals("{\"type\":\"read-only\"}", writer.text());
            viewer.send(frame(0x82, "ok".getBytes(StandardCharsets.UTF_8)));
            assertEquals("ok", readPipe(endpoint.inputFd(), 2));
            assertEquals(3, counter("vportd_web_input_refused_total"), "two inputs and one resize refused");
        }
    }

    static String readPipe(int fd, int n) {
        StringBuilder s = new StringBuilder();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(256);
            Await.until(n + " bytes in the port's input pipe", WAIT, () -> {
                long r = Io.read(fd, buf.address(), 256);
                for (int i = 0; i < r; i++) {
                    s.append((char) buf.get(ValueLayout.JAVA_BYTE, i));
                }
                return s.length() >= n;
            });
        }
        return s.toString();
    }

    long counter(String name) {
        return web.stats().metrics().metrics().stream().filter(m -> m.name().equals(name)).findFirst().orElseThrow()
                .value().getAsLong();
    }

    @Test
    void anOversizedFrameIsClosedWith1009AndCounted() throws IOException {
        String cookie = login();
        try (WsTestClient c = terminal(cookie, "")) {
            c.text();
            c.send(frame(0x82, new byte[0], true, 1L << 40)); // the header alone announces a terabyte
            assertEquals(WsFrames.CLOSE_TOO_BIG, c.awaitClose());
        }
        assertEquals(1, web.stats().badFrames());
    }

    @Test
    void garbageIsClosedAndCountedAndTheServerServesOn() throws IOException {
        String cookie = login();
        try (WsTestClient c = new WsTestClient(port)) {
            assertEquals(101, c.request(WsTestClient.upgrade("/ws/d/0/events", port, cookie, origin)));
            assertTrue(c.text().contains("\"type\":\"ports\""));
            c.send(frame(0x82, new byte[] {(byte) 0xde, (byte) 0xad})); // binary on the port list
            assertEquals(WsFrames.CLOSE_UNSUPPORTED, c.awaitClose());
        }
        try (WsTestClient c = terminal(cookie, "")) {
            c.text();
            c.send(new byte[] {(byte) 0xff, (byte) 0xff, 1, 2, 3, 4, 5, 6}); // reserved bits, unmasked, nonsense
            assertEquals(WsFrames.CLOSE_PROTOCOL_ERROR, c.awaitClose());
        }
        try (WsTestClient c = terminal(cookie, "")) {
            c.text();
            c.send(frame(0x81, "not json".getBytes(StandardCharsets.UTF_8)));
            assertEquals(WsFrames.CLOSE_UNSUPPORTED, c.awaitClose());
        }
        assertEquals(3, web.stats().badFrames());
        assertEquals(400, status("\u0016\u0003\u0001garbage that is no request\r\n\r\n"));
        assertEquals(400, status("\r\n\r\n")); // found by WebFuzzTest
        assertEquals(431, status("GET / HTTP/1.1\r\nX: " + "a".repeat(20_000) + "\r\n\r\n"));
        assertEquals(200, status(WsTestClient.get("/d/0/", port, cookie, null)), "still serving");
    }

    /**
     * A browser that never reads: the producer (standing in for the data plane) offers 16 MiB of
     * console output and never waits; the browser is dropped and counted, and the producer's
     * follower is dropped (offer false) instead of ever holding it up.
     */
    @Test
    void aBrowserThatNeverReadsIsDroppedAndCountedWhileTheOutputGoesOn() throws Exception {
        String cookie = login();
        try (WsTestClient c = terminal(cookie, "")) {
            c.socket.setReceiveBufferSize(4096);
            LogFollower follower = Await.value("a follower", WAIT, () -> ports.followers.stream().findFirst());
            byte[] line = "console output that nobody reads, 64 bytes of it per line.....\n".getBytes(StandardCharsets.UTF_8);
            boolean kept = true;
            for (int i = 0; i < 16 * 1024 * 1024 / line.length; i++) {
                kept &= follower.offer(line, 0, line.length);
            }
            assertFalse(kept, "the follower overflowed rather than the producer waiting");
            Await.until("the slow browser dropped", WAIT, () -> web.stats().slowClientsDropped() == 1);
            assertTrue(follower.cancelled(), "the data plane forgets the follower");
        }
        Await.until("no connection open (the drop is counted just before the close)", WAIT,
                () -> counter("vportd_web_connections") == 0);
    }

    @Test
    void portEventsReachTheDevicePage() throws IOException {
        String cookie = login();
        try (WsTestClient c = new WsTestClient(port)) {
            assertEquals(101, c.request(WsTestClient.upgrade("/ws/d/0/events", port, cookie, origin)));
            String first = c.text();
            assertTrue(first.contains("\"nr\":2") && first.contains("org.example.two"), first);
            web.onPortEvent(new PortEvent(PortEvent.GUEST_OPEN, 2, "org.example.two", null));
            String next;
            do {
                next = c.text();
            } while (!next.contains("guest-open"));
            assertTrue(next.contains("\"event\":\"guest-open\""), next);
        }
    }

    @Test
    void theLoginRedirectsOnlyToTheConsolesOwnPages() throws IOException {
        for (String next : new String[] {"%2F%2Fevil.example%2F", "https%3A%2F%2Fevil.example%2Fd%2F0%2F", "%2Fd%2F0%2F%0d%0aSet-Cookie%3A+x%3Dy"}) {
            try (WsTestClient c = new WsTestClient(port)) {
                String body = "token=" + TOKEN + "&next=" + next;
                assertEquals(303, c.request("POST /login HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nOrigin: " + origin
                        + "\r\nContent-Length: " + body.length() + "\r\n\r\n" + body));
                assertEquals("/d/0/", c.header("Location"), next);
            }
        }
    }

    @Test
    void hostAndOriginRulesPerListenAddress() {
        WebAuth loopback = new WebAuth(TOKEN, "127.0.0.1", 8022);
        WebAuth any = new WebAuth(TOKEN, "0.0.0.0", 8022);
        WebAuth named = new WebAuth(TOKEN, "console.example", 8022);
        assertTrue(loopback.hostAllowed(req("localhost:8022", null)));
        assertFalse(loopback.hostAllowed(req("127.0.0.1:8023", null)));
        assertFalse(loopback.hostAllowed(req("evil.example:8022", null)));
        assertTrue(any.hostAllowed(req("127.0.0.1:8022", null)), "a wildcard listener answers to the machine's addresses");
        assertFalse(any.hostAllowed(req("evil.example:8022", null)), "but not to any name (DNS rebinding)");
        assertTrue(named.hostAllowed(req("console.example:8022", null)));
        assertFalse(named.hostAllowed(req("localhost:8022", null)));
        assertTrue(named.originAllowed(req("console.example:8022", "http://console.example:8022")));
        assertFalse(named.originAllowed(req("console.example:8022", "https://console.example:8022")));
        assertFalse(named.originAllowed(req("console.example:8022", "null")));
        assertTrue(loopback.tokenMatches(TOKEN));
        assertFalse(loopback.tokenMatches(TOKEN + "x"));
        assertFalse(loopback.tokenMatches(null));
    }

    static HttpRequest req(String host, String origin) {
        java.util.Map<String, String> h = new java.util.HashMap<>();
        h.put("host", host);
        if (origin != null) {
            h.put("origin", origin);
        }
        return new HttpRequest("GET", "/", "", h, 0);
    }

    /** Every file the pages load is in the class output: the console's own ones and the fetched xterm.js. */
    @Test
    void everyAssetThePagesLoadIsThere() throws IOException {
        for (String name : java.util.List.of("app.js", "app.css", "xterm.js", "xterm.css", "addon-fit.js")) {
            byte[] a = WebPages.asset(name);
            assertNotNull(a, name + " is missing from the class output");
            assertTrue(a.length > 100, name + " is " + a.length + " bytes");
        }
    }

    /** xterm.js is larger than a connection's usual outbound bound: a static file is sent whole all the same. */
    @Test
    void staticFilesLargerThanTheOutboundBoundAreServedWhole() throws IOException {
        byte[] xterm = WebPages.asset("xterm.js");
        assertNotNull(xterm, "the build put xterm.js into the class output");
        assertTrue(xterm.length > WebConnection.OUT_CAPACITY, "xterm.js is " + xterm.length + " bytes");
        try (WsTestClient c = new WsTestClient(port)) {
            assertEquals(200, c.request(WsTestClient.get("/static/xterm.js", port, null, null)));
            assertEquals(Integer.toString(xterm.length), c.header("Content-Length"));
            byte[] body = c.raw().readNBytes(xterm.length);
            assertArrayEquals(xterm, body);
        }
        assertEquals(404, status(WsTestClient.get("/static/app.js/../../WebServer.class", port, null, null)));
    }

    @Test
    void theTokenFileMustBePrivate(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws IOException {
        java.nio.file.Path f = dir.resolve("token");
        java.nio.file.Files.writeString(f, TOKEN + "\n");
        java.nio.file.Files.setPosixFilePermissions(f, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        IOException e = org.junit.jupiter.api.Assertions.assertThrows(IOException.class, () -> WebAuth.readTokenFile(f));
        assertTrue(e.getMessage().contains("chmod 600"), e.getMessage());
        java.nio.file.Files.setPosixFilePermissions(f, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        assertEquals(TOKEN, WebAuth.readTokenFile(f));
        assertNotNull(WebAuth.generateToken());
        assertNull(WebPages.asset("../../../Main.class"));
    }
}
