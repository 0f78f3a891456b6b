package io.vportd.vhost;

import io.vportd.testsupport.Await;
import io.vportd.sys.Fd;
import io.vportd.sys.FdCount;
import io.vportd.sys.EventFd;
import io.vportd.sys.MemFd;
import io.vportd.sys.UnixSockets;
import io.vportd.vhost.testing.RecordingBackend;
import io.vportd.vhost.testing.TestFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VhostUserServerTest {

    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final int QUEUES = 4;

    @TempDir
    Path dir;

    private long fdsBefore;

    @BeforeEach
    void countFds() {
        fdsBefore = FdCount.now();
    }

    @AfterEach
    void noLeak() throws InterruptedException {
        // The server closes asynchronously only while running; every test closes it first.
        assertEquals(fdsBefore, FdCount.now(), "open descriptors before and after the test");
    }

    @Test
    void fullQemuSequenceDrivesTheBackend() throws Exception {
        Path sock = dir.resolve("vc.sock");
        RecordingBackend backend = RecordingBackend.console(QUEUES);
        try (VhostUserServer server = new VhostUserServer(sock, backend).start()) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(sock)));
            try (TestFrontend fe = TestFrontend.connect(sock, QUEUES, 12)) {
                assertEquals(backend.deviceFeatures() | 1L << 30, fe.offeredFeatures());
                assertEquals(Session.PROTOCOL_FEATURES_OFFERED, fe.protocolFeatures());
                assertEquals(QUEUES, fe.queueNum());
                assertEquals(Session.MAX_MEM_SLOTS, fe.maxMemSlots());
                assertArrayEquals(backend.config(), fe.initialConfig());
                assertEquals(List.of("getConfig 0 12", "setFeatures 0x" + Long.toHexString(backend.deviceFeatures()),
                        "setMemory 1"), backend.events());
                assertEquals(1, backend.memory().regionCount());

                // Build queue 1's ring in guest RAM and start it.
                long desc = 0x10000;
                long avail = 0x11000;
                long used = 0x12000;
                backend.clearEvents();
                fe.startQueue(1, desc, avail, used, 256, 7);
                assertEquals(List.of("startQueue 1", "stopQueue 1", "startQueue 1"), backend.events(),
                        "started on enable, restarted by the second SET_VRING_CALL");
                QueueSetup s = backend.running(1);
                assertNotNull(s, "queue 1 started");
                assertEquals(256, s.size());
                assertEquals(7, s.firstAvailIndex());
                assertTrue(s.eventIdx());
                assertEquals(16L * 256, s.desc().byteSize());
                assertEquals(6 + 2L * 256, s.avail().byteSize());
                assertEquals(6 + 8L * 256, s.used().byteSize());
                // The backend's ring views alias the frontend's guest RAM.
                MemorySegment ram = fe.guestRam();
                ram.set(ValueLayout.JAVA_LONG, desc, 0x1122_3344_5566_7788L);
                assertEquals(0x1122_3344_5566_7788L, s.desc().get(ValueLayout.JAVA_LONG, 0));
                s.used().set(ValueLayout.JAVA_SHORT, 2, (short) 9);
                assertEquals(9, ram.get(ValueLayout.JAVA_SHORT, used + 2));
                assertEquals(ram.address() + avail, fe.memory().hostAddress(avail, 1));
                // Kick reaches the backend's kick fd; the backend's call reaches the frontend.
                fe.kick(1);
                assertEquals(1, EventFd.drain(s.kickFd()));
                assertFalse(fe.awaitCall(1, Duration.ZERO));
                assertEquals(8, EventFd.signal(s.callFd()));
                assertTrue(fe.awaitCall(1, WAIT));

                // Config write and read back.
                fe.setConfig(8, new byte[] {'x', 0, 0, 0});
                assertEquals('x', backend.config()[8]);
                byte[] whole = backend.config();
                whole[8] = 'y';
                fe.guestConfigWrite(whole);
                assertEquals("setConfig 0 12", backend.events().get(backend.events().size() - 1));
                assertEquals('y', backend.config()[8]);
                assertArrayEquals(new byte[] {80, 0}, fe.getConfig(0, 2));
                assertArrayEquals(new byte[0], fe.getConfig(10, 4), "out of range: empty reply");
            }
            // GET_CONFIG out of range ended that session; the server is still there.
            Await.until("first session to end", WAIT, () -> server.sessionsEnded() == 1);
            assertTrue(server.lastError().contains("outside the 12-byte config space"), server.lastError());
            assertTrue(backend.events().contains("reset"));

            backend.clearEvents();
            try (TestFrontend fe = TestFrontend.connect(sock, TestFrontend.Options.defaults(QUEUES, 12).withSetMemTable())) {
                fe.startQueue(0, 0x1000, 0x2000, 0x3000, 64);
                backend.setStopIndex(0, 42);
                assertEquals(42, fe.stopQueue(0));
                assertNull(backend.running(0));
                // Restart on the base the backend returned.
                fe.startQueue(0, 0x1000, 0x2000, 0x3000, 64, 42);
                assertEquals(42, backend.running(0).firstAvailIndex());
            }
            Await.until("second session to end", WAIT, () -> server.sessionsEnded() == 2);
            assertEquals(1, server.sessionsFailed(), "a clean disconnect is not a failure");
            assertTrue(backend.await(e -> e.equals("reset"), WAIT));
            assertNull(backend.running(0), "reset stopped everything");
            assertEquals(0, backend.memory().regionCount(), "memory withdrawn at session end");
        }
        assertFalse(Files.exists(sock), "socket file removed on close");
    }

    @Test
    void callFdChangeWhileRunningRestartsTheQueue() throws Exception {
        Path sock = dir.resolve("c.sock");
        RecordingBackend backend = RecordingBackend.console(2);
        try (VhostUserServer server = new VhostUserServer(sock, backend).start();
             TestFrontend fe = TestFrontend.connect(sock, 2, 12)) {
            fe.startQueue(0, 0x1000, 0x2000, 0x3000, 64);
            assertEquals(1, server.sessionsStarted());
            int oldCall = backend.running(0).callFd();
            backend.setStopIndex(0, 5);
            try (Fd call = EventFd.create(0, EventFd.EFD_NONBLOCK)) {
                assertEquals(0, fe.request(Request.SET_VRING_CALL, Codec.u64(0), call.fd()));
                QueueSetup s = backend.running(0);
                assertNotNull(s);
                assertEquals(5, s.firstAvailIndex(), "restarted at the index stopQueue returned");
                assertEquals(8, EventFd.signal(s.callFd()));
                assertEquals(1, EventFd.drain(call.fd()), "new call fd is the one in use");
                assertTrue(oldCall >= 0);
            }
            // Disable and enable again.
            assertEquals(0, fe.request(Request.SET_VRING_ENABLE, Codec.vringState(0, 0)));
            assertNull(backend.running(0));
            assertEquals(0, fe.request(Request.SET_VRING_ENABLE, Codec.vringState(0, 1)));
            assertNotNull(backend.running(0));
            // RESET_DEVICE stops everything but keeps the session.
            fe.resetDevice();
            assertNull(backend.running(0));
            assertEquals(0, fe.stopQueue(1), "GET_VRING_BASE of a never-started queue answers its base, 0");
        }
    }

    @Test
    void memoryAddedAndRemovedWhileRunning() throws Exception {
        Path sock = dir.resolve("m.sock");
        RecordingBackend backend = RecordingBackend.console(2);
        try (VhostUserServer server = new VhostUserServer(sock, backend).start();
             TestFrontend fe = TestFrontend.connect(sock, 2, 12);
             Fd extra = MemFd.create("extra")) {
            fe.startQueue(0, 0x1000, 0x2000, 0x3000, 64);
            assertEquals(0, server.sessionsFailed());
            MemFd.truncate(extra.fd(), 1 << 20);
            Codec.MemRegion r = new Codec.MemRegion(1L << 32, 1 << 20, 0x7f20_0000_0000L, 0);
            assertEquals(0, fe.request(Request.ADD_MEM_REG, Codec.singleRegion(r), extra.fd()));
            assertEquals(2, backend.memory().regionCount());
            assertNotNull(backend.running(0), "ring restarted on the new table");
            assertEquals(2, backend.running(0).memory().regionCount());
            assertEquals(0, fe.request(Request.REM_MEM_REG, Codec.singleRegion(r)));
            assertEquals(1, backend.memory().regionCount());
            List<String> ev = backend.events();
            assertEquals(List.of("stopQueue 0", "setMemory 2", "startQueue 0", "stopQueue 0", "setMemory 1", "startQueue 0"),
                    ev.subList(ev.size() - 6, ev.size()));
        }
    }

    @Test
    void serverSurvivesMalformedSessionAndServesTheNext() throws Exception {
        Path sock = dir.resolve("s.sock");
        RecordingBackend backend = RecordingBackend.console(QUEUES);
        try (VhostUserServer server = new VhostUserServer(sock, backend).start()) {
            try (TestFrontend raw = TestFrontend.connectRaw(sock, TestFrontend.Options.defaults(QUEUES, 12))) {
                raw.send(Request.GET_FEATURES.code, 2, new byte[0]); // version 2
                assertTrue(raw.awaitDisconnect(WAIT), "backend hung up");
            }
            Await.until("malformed session to be counted", WAIT, () -> server.sessionsFailed() == 1);
            assertTrue(server.lastError().contains("header version 2"), server.lastError());
            try (TestFrontend raw = TestFrontend.connectRaw(sock, TestFrontend.Options.defaults(QUEUES, 12))) {
                raw.sendBytes(new byte[] {1, 0, 0}); // a partial header, then EOF
            }
            Await.until("truncated session to be counted", WAIT, () -> server.sessionsFailed() == 2);
            assertTrue(server.lastError().contains("in the middle of a message"), server.lastError());
            try (TestFrontend raw = TestFrontend.connectRaw(sock, TestFrontend.Options.defaults(QUEUES, 12));
                 Fd a = EventFd.create(0, 0)) {
                int[] nine = new int[9];
                java.util.Arrays.fill(nine, a.fd());
                raw.send(Request.SET_OWNER.code, 1, new byte[0], nine);
                assertTrue(raw.awaitDisconnect(WAIT));
            }
            Await.until("fd flood session to be counted", WAIT, () -> server.sessionsFailed() == 3);
            assertTrue(server.lastError().contains("more than 8 file descriptors"), server.lastError());
            // Unknown request: logged, failure-acked, session continues.
            try (TestFrontend fe = TestFrontend.connect(sock, QUEUES, 12)) {
                fe.send(99, Codec.VERSION | Codec.FLAG_NEED_REPLY, new byte[] {1, 2, 3});
                TestFrontend.Reply r = fe.receive();
                assertEquals(99, r.request());
                assertEquals(1, r.u64(), "failure ack for an unknown request");
                assertEquals(1, server.stats().unknownRequests());
                assertEquals(3, server.stats().rejectedMessages(), "version 2, truncation, fd flood");
                fe.startQueue(2, 0x4000, 0x5000, 0x6000, 32);
                assertNotNull(backend.running(2), "the stream stayed in sync");
            }
        }
    }

    @Test
    void staleSocketIsReplacedLiveOneAndPlainFileRefused() throws Exception {
        Path stale = dir.resolve("stale.sock");
        UnixSockets.listen(stale, 1).close(); // leaves a socket file nobody listens on
        assertTrue(Files.exists(stale));
        RecordingBackend backend = RecordingBackend.console(2);
        try (VhostUserServer server = new VhostUserServer(stale, backend).start()) {
            IOException live = assertThrows(IOException.class, () -> new VhostUserServer(stale, backend));
            assertTrue(live.getMessage().contains("in use"), live.getMessage());
            Await.until("the probe connection to be served and ended", WAIT, () -> server.sessionsEnded() == 1);
        }
        Path plain = dir.resolve("plain");
        Files.writeString(plain, "not a socket");
        IOException e = assertThrows(IOException.class, () -> new VhostUserServer(plain, backend));
        assertTrue(e.getMessage().contains("not a socket"), e.getMessage());
        assertTrue(Files.exists(plain), "a non-socket file is left alone");
    }

    @Test
    void closeWhileAFrontendIsConnected() throws Exception {
        Path sock = dir.resolve("x.sock");
        RecordingBackend backend = RecordingBackend.console(2);
        TestFrontend fe;
        try (VhostUserServer server = new VhostUserServer(sock, backend).start()) {
            fe = TestFrontend.connect(sock, 2, 12);
            fe.startQueue(0, 0x1000, 0x2000, 0x3000, 16);
            assertEquals(1, server.sessionsStarted());
        }
        try (TestFrontend f = fe) {
            assertTrue(f.awaitDisconnect(WAIT));
            assertTrue(backend.events().contains("reset"));
        }
    }
}
