package io.vportd.console.handover;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vportd.console.cli.PortSpecParser;
import io.vportd.console.device.ConsoleDevice;
import io.vportd.console.device.PortStatus;
import io.vportd.sys.UnixSockets;
import io.vportd.testsupport.Await;
import io.vportd.vhost.VhostUserServer;
import io.vportd.vhost.testing.TestFrontend;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The running daemon's side of a live hand-over, in one JVM: a full hand-over to a device rebuilt
 * from the state record (same ports, the connected host client kept, the frontend answered by
 * the new server), and every way it can fail before the new process says ready (it refuses the
 * record's version, it hangs up after the state, a port cannot be handed over): the running
 * daemon then serves on as before.
 */
@Timeout(60)
class HandoverServerTest {

    static final Duration WAIT = Duration.ofSeconds(10);
    static final int MAX_PORTS = 4;
    static final int QUEUES = 2 * (MAX_PORTS + 1);
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private ConsoleDevice device;
    private VhostUserServer vhost;
    private HandoverServer handover;
    private final AtomicBoolean exited = new AtomicBoolean();
    private Path socket;

    private void start(String... specs) throws IOException {
        socket = dir.resolve("vportd.sock");
        device = new ConsoleDevice(MAX_PORTS, java.util.Arrays.stream(specs).map(PortSpecParser::parse).toList());
        vhost = new VhostUserServer(socket, device).start();
        handover = HandoverServer.start(new HandoverServer.Context(socket, null, null, false, vhost, device.dataPlane(),
                () -> exited.set(true)));
    }

    @AfterEach
    void stop() throws IOException {
        if (handover != null) {
            handover.close();
        }
        if (vhost != null) {
            vhost.close();
        }
        if (device != null) {
            device.close();
        }
    }

    private SocketChannel client(String name) throws IOException {
        SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
        c.connect(UnixDomainSocketAddress.of(dir.resolve(name)));
        return c;
    }

    private static String read(SocketChannel c, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (c.read(b) < 0) {
                throw new IOException("end of file");
            }
        }
        return new String(b.array(), java.nio.charset.StandardCharsets.ISO_8859_1);
    }

    /** The running daemon still serves: it answers listings and a new frontend negotiates. */
    private void assertServesOn() throws IOException {
        assertFalse(exited.get(), "the running daemon did not exit");
        assertEquals(2, device.dataPlane().ports().size());
        try (TestFrontend fe = TestFrontend.connect(socket, QUEUES, 12)) {
            fe.startQueue(0, 0x1000, 0x2000, 0x3000, 64);
            assertEquals(0, fe.stopQueue(0));
        }
    }

    @Test
    void aFullHandOverRebuildsTheDeviceKeepsTheHostClientAndServesTheFrontend() throws Exception {
        start("nr=0,console,cols=100,rows=40,socket=" + dir.resolve("con.sock"), "nr=2,name=agent,socket=" + dir.resolve("a.sock"));
        try (SocketChannel agent = client("a.sock");
             SocketChannel con = client("con.sock");
             TestFrontend fe = TestFrontend.connect(socket, QUEUES, 12)) {
            fe.startQueue(0, 0x1000, 0x2000, 0x3000, 64);
            fe.startQueue(5, 0x5000, 0x6000, 0x7000, 64);
            Await.until("both clients connected", WAIT,
                    () -> device.dataPlane().ports().stream().filter(PortStatus::hostConnected).count() == 2);
            device.dataPlane().emergencyWrite('X'); // console output: to the client, and into the replay ring
            assertEquals("X", read(con, 1));
            Restored r;
            try (TakeOver link = TakeOver.connect(socket)) {
                r = Restored.from(link, socket, io.vportd.console.device.PortLogContext.DEFAULT);
                link.ready();
                // The pause is measured from the rings stopping, which comes before the freeze.
                assertTrue(link.ringsStoppedAtNanos() != 0, "the running daemon says when its rings stopped");
                assertTrue(r.pausedAtNanos() == link.ringsStoppedAtNanos() && r.pausedAtNanos() - r.frozenAtNanos() < 0,
                        () -> "pause from " + r.pausedAtNanos() + ", frozen at " + r.frozenAtNanos());
            }
            try {
                Await.until("the running daemon to let go", WAIT, exited::get);
                r.device().dataPlane().thaw();
                r.vhost().start();
                List<PortStatus> ports = r.device().dataPlane().ports();
                assertEquals(List.of(0, 2), ports.stream().map(PortStatus::id).toList());
                assertEquals("agent", ports.get(1).name());
                assertTrue(ports.get(0).console());
                assertTrue(ports.get(1).hostConnected(), "the connected host client came along");
                assertEquals(0, fe.stopQueue(5), "the frontend is answered by the new server");
                r.device().dataPlane().emergencyWrite('Y');
                assertEquals("Y", read(con, 1), "the console client is not sent the replay ring again");
                agent.configureBlocking(false);
                assertEquals(0, agent.read(ByteBuffer.allocate(16)), "the host client saw no end of file");
            } finally {
                r.vhost().close();
                r.device().close();
                r.handoverListener().closeQuietly();
            }
        }
    }

    @Test
    void aRefusedRecordVersionLeavesTheRunningDaemonServing() throws Exception {
        start("nr=0,console,socket=" + dir.resolve("con.sock"), "nr=1,null");
        try (HandoverLink link = new HandoverLink(UnixSockets.connect(HandoverServer.pathFor(socket)))) {
            ObjectNode req = JSON.createObjectNode().put("op", "take-over").put("version", 1).put("pid", 1);
            link.sendFrame(JSON.writeValueAsBytes(req));
            long deadline = System.nanoTime() + WAIT.toNanos();
            int count = JSON.readTree(link.receiveFrame(deadline)).path("fdCount").asInt();
            byte[] state = link.receiveFrame(deadline);
            link.receiveFds(count, deadline).forEach(io.vportd.sys.Fd::closeQuietly);
            byte[] future = new String(state, java.nio.charset.StandardCharsets.UTF_8)
                    .replace("\"version\":1", "\"version\":2").getBytes(java.nio.charset.StandardCharsets.UTF_8);
            IOException e = assertThrows(IOException.class, () -> HandoverState.parse(future));
            link.sendFrame(JSON.writeValueAsBytes(JSON.createObjectNode().put("op", "refused").put("why", e.getMessage())));
        }
        Await.until("the running daemon to resume", WAIT, () -> handover.failedHandovers() == 1);
        assertServesOn();
    }

    @Test
    void aNewProcessDyingAfterTheStateLeavesTheRunningDaemonServing() throws Exception {
        start("nr=0,console,socket=" + dir.resolve("con.sock"), "nr=1,null");
        try (TestFrontend fe = TestFrontend.connect(socket, QUEUES, 12)) {
            fe.startQueue(0, 0x1000, 0x2000, 0x3000, 64);
            try (HandoverLink link = new HandoverLink(UnixSockets.connect(HandoverServer.pathFor(socket)))) {
                link.sendFrame(JSON.writeValueAsBytes(JSON.createObjectNode().put("op", "take-over")));
                long deadline = System.nanoTime() + WAIT.toNanos();
                link.receiveFrame(deadline);
                link.receiveFrame(deadline);
            } // hangs up: as if killed
            Await.until("the running daemon to resume", WAIT, () -> handover.failedHandovers() == 1);
            assertEquals(0, fe.stopQueue(0), "the same session goes on: the ring was restarted where it was");
        }
        assertServesOn();
    }

    @Test
    void aPortThatCannotBeHandedOverRefusesTheHandOverWithTheReason() throws Exception {
        start("nr=0,console,socket=" + dir.resolve("con.sock"), "nr=1,stdio");
        try (TakeOver link = TakeOver.connect(socket)) {
            IOException e = assertThrows(IOException.class, () -> Restored.from(link, socket, io.vportd.console.device.PortLogContext.DEFAULT));
            assertTrue(e.getMessage().contains("refused") && e.getMessage().contains("cannot be handed over"), e.getMessage());
        }
        Await.until("the running daemon to resume", WAIT, () -> handover.failedHandovers() == 1);
        assertServesOn();
    }
}
