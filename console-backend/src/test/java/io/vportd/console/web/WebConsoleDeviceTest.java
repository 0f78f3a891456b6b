package io.vportd.console.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.api.DataPlanePorts;
import io.vportd.console.cli.PortSpecParser;
import io.vportd.console.control.ControlMessage;
import io.vportd.console.device.ConsoleDevice;
import io.vportd.console.device.PortCounters;
import io.vportd.console.device.PortLogContext;
import io.vportd.console.device.QueueMap;
import io.vportd.sys.EventFd;
import io.vportd.sys.Fd;
import io.vportd.testsupport.Await;
import io.vportd.vring.testing.GuestRam;
import io.vportd.vring.testing.RingDriver;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The web console on a real device and data plane (a fake guest drives the rings in test guest
 * RAM): typed bytes from the writer's WebSocket reach the guest's receive buffers through the
 * {@code web} endpoint, the guest's console output reaches the browser after the replay ring,
 * and a browser that never reads is dropped and counted while every console buffer the guest
 * writes is completed (the guest keeps its pace: nothing waits for the browser).
 */
class WebConsoleDeviceTest {

    static final int MAX_PORTS = 2;
    static final int RING = 256;
    static final Duration WAIT = Duration.ofSeconds(30);
    static final int RXQ = 0;
    static final int TXQ = 1;

    private ConsoleDevice device;
    private GuestRam ram;
    private final RingDriver[] rings = new RingDriver[2 * (MAX_PORTS + 1)];
    private final Fd[] kicks = new Fd[rings.length];
    private final Fd[] calls = new Fd[rings.length];
    private WebServer web;
    private String cookie;

    @BeforeEach
    void boot() throws IOException {
        device = new ConsoleDevice(MAX_PORTS, List.of(PortSpecParser.parse("nr=0,console,web")), PortLogContext.DEFAULT);
        ram = new GuestRam(32L << 20, 1);
        io.vportd.console.device.GuestRings.startAll(device, ram, RING, rings, kicks, calls);
        for (int i = 0; i < 16; i++) {
            rings[QueueMap.CONTROL_RX].addInBuffer(4096);
        }
        EventFd.signal(kicks[QueueMap.CONTROL_RX].fd());
        guestSays(0xFFFFFFFF, ControlMessage.DEVICE_READY, 1);
        guestSays(0, ControlMessage.PORT_READY, 1);
        guestSays(0, ControlMessage.PORT_OPEN, 1);
        web = WebServer.start("127.0.0.1", 0, WebServerTest.TOKEN, new DataPlanePorts(device.dataPlane()), "0");
        device.dataPlane().setEventListener(web);
        cookie = login();
    }

    @AfterEach
    void shutdown() {
        if (web != null) {
            web.close();
        }
        device.close();
        for (int q = 0; q < rings.length; q++) {
            rings[q].close();
            kicks[q].closeQuietly();
            calls[q].closeQuietly();
        }
        ram.close();
    }

    private void guestSays(int id, int event, int value) {
        byte[] m = new byte[8];
        ControlMessage.encodeHeader(m, 0, id, event, value);
        int before = rings[QueueMap.CONTROL_TX].usedIdx();
        rings[QueueMap.CONTROL_TX].addOutBuffer(m);
        EventFd.signal(kicks[QueueMap.CONTROL_TX].fd());
        Await.until("the guest's control message taken", WAIT, () -> rings[QueueMap.CONTROL_TX].usedIdx() == before + 1);
    }

    /** The guest writes one console buffer and waits until the device completed it. */
    private void guestWrites(byte[] data) {
        int before = rings[TXQ].usedIdx();
        rings[TXQ].addOutBuffer(data);
        EventFd.signal(kicks[TXQ].fd());
        Await.until("the guest's console buffer completed", WAIT, () -> rings[TXQ].usedIdx() == before + 1);
        while (rings[TXQ].pollUsed() != null) {
            // the descriptor is the fake guest's again
        }
    }

    private String login() throws IOException {
        int port = web.port();
        try (WsTestClient c = new WsTestClient(port)) {
            String body = "token=" + WebServerTest.TOKEN;
            assertEquals(303, c.request("POST /login HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nContent-Length: "
                    + body.length() + "\r\n\r\n" + body));
            String s = c.header("Set-Cookie");
            return s.substring(0, s.indexOf(';'));
        }
    }

    private WsTestClient terminal(String query) throws IOException {
        WsTestClient c = new WsTestClient(web.port());
        assertEquals(101, c.request(WsTestClient.upgrade("/ws/d/0/port/0" + query, web.port(), cookie,
                "http://127.0.0.1:" + web.port())));
        return c;
    }

    @Test
    void typingReachesTheGuestAndOutputReachesTheBrowserAfterTheReplay() throws IOException {
        guestWrites("boot output\r\n".getBytes(StandardCharsets.UTF_8));
        try (WsTestClient c = terminal("")) {
            assertTrue(c.text().contains("\"input\":true"));
            rings[RXQ].addInBuffer(256);
            EventFd.signal(kicks[RXQ].fd());
            c.send(WsFramesTest.frame(0x82, "echo $((6*7))\r".getBytes(StandardCharsets.UTF_8)));
            RingDriver.Used[] got = new RingDriver.Used[1];
            Await.until("the typed bytes in the guest's receive buffer", WAIT, () -> (got[0] = rings[RXQ].pollUsed()) != null);
            assertEquals("echo $((6*7))\r", new String(got[0].data(), 0, got[0].length(), StandardCharsets.UTF_8));
            guestWrites("42\r\n".getBytes(StandardCharsets.UTF_8));
            ByteArrayOutputStream seen = new ByteArrayOutputStream();
            while (!seen.toString(StandardCharsets.UTF_8).endsWith("42\r\n")) {
                Object[] f = c.frame();
                if ((int) f[0] == WsFrames.OP_BINARY) {
                    seen.writeBytes((byte[]) f[1]);
                }
            }
            assertEquals("boot output\r\n42\r\n", seen.toString(StandardCharsets.UTF_8), "the replay ring, then live output");
        }
    }

    @Test
    void aBrowserThatNeverReadsIsDroppedWhileEveryConsoleBufferIsCompleted() throws IOException {
        try (WsTestClient stalled = terminal("?role=view")) {
            stalled.socket.setReceiveBufferSize(4096);
            byte[] line = new byte[4096];
            java.util.Arrays.fill(line, (byte) 'x');
            int buffers = 0;
            while (web.stats().slowClientsDropped() == 0) { // guestWrites waits for each completion, never for the browser
                guestWrites(line);
                buffers++;
                assertTrue(buffers < 16 * 1024, "16,384 console buffers (64 MiB) and the browser is still there");
            }
            assertEquals(1, device.dataPlane().ports().get(0).counters().get(PortCounters.LOG_FOLLOWERS_DROPPED));
            guestWrites(line); // and the console goes on
        }
    }
}
