package io.vportd.vhost;

import io.vportd.testsupport.Await;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.FdCount;
import io.vportd.sys.EventFd;
import io.vportd.sys.Io;
import io.vportd.sys.UnixSockets;
import io.vportd.vhost.testing.RecordingBackend;
import io.vportd.vhost.testing.TestFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Frontends that misuse the server (issue 11): silent clients, blocking descriptors, device-ended sessions. */
class VhostUserHardeningTest {

    private static final Duration WAIT = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    private long fdsBefore;

    @BeforeEach
    void countFds() {
        fdsBefore = FdCount.now();
    }

    @AfterEach
    void noLeak() {
        assertEquals(fdsBefore, FdCount.now(), "open descriptors before and after the test");
    }

    /** 11.7: a client that connects and says nothing is dropped, and the next frontend is served. */
    @Test
    void silentClientIsDroppedAndTheNextFrontendGetsIn() throws Exception {
        Path sock = dir.resolve("idle.sock");
        RecordingBackend backend = RecordingBackend.console(2);
        VhostUserServer.Options opts = new VhostUserServer.Options(false, Duration.ofMillis(300));
        try (VhostUserServer server = new VhostUserServer(sock, backend, opts).start();
             Fd silent = UnixSockets.connect(sock)) {
            long t0 = System.nanoTime();
            try (TestFrontend fe = TestFrontend.connect(sock, 2, 12)) {
                assertTrue(fe.queueNum() >= 2, "the second frontend was served");
            }
            assertTrue(System.nanoTime() - t0 < WAIT.toNanos() / 2, "served well before the frontend's own timeout");
            assertEquals(1, server.stats().idleHandshakes());
            assertEquals(1, server.sessionsFailed(), "the dropped client counts as a failed session");
            try (Arena a = Arena.ofConfined()) {
                MemorySegment b = a.allocate(16);
                assertEquals(0, Io.read(silent.fd(), b.address(), 16), "the silent client's connection was closed");
            }
        }
    }

    /**
     * 11.1: a blocking eventfd whose counter is one below its maximum would block the next
     * interrupt forever; the session makes it non-blocking, so the write answers EAGAIN.
     */
    @Test
    void blockingSaturatedCallEventfdCannotBlockTheDevice() throws Exception {
        Path sock = dir.resolve("call.sock");
        RecordingBackend backend = RecordingBackend.console(2);
        try (VhostUserServer server = new VhostUserServer(sock, backend).start();
             TestFrontend fe = TestFrontend.connect(sock, 2, 12);
             Fd call = EventFd.create(0, 0)) {
            fe.startQueue(0, 0x1000, 0x2000, 0x3000, 64);
            assertEquals(8, EventFd.write(call.fd(), 0xffff_ffff_ffff_fffeL));
            assertEquals(0, fe.request(Request.SET_VRING_CALL, Codec.u64(0), call.fd()));
            QueueSetup s = backend.running(0);
            assertNotNull(s);
            int r = assertTimeoutPreemptively(Duration.ofSeconds(5), () -> EventFd.signal(s.callFd()),
                    "an interrupt write on the frontend's call fd blocked");
            assertEquals(-Errno.EAGAIN, r);
            assertTrue(Io.isNonBlocking(call.fd()));
            assertEquals(0, server.sessionsFailed());
        }
    }

    /** 11.3b: a device can end the session; the next frontend is served normally. */
    @Test
    void deviceEndsTheSessionAndTheNextOneWorks() throws Exception {
        Path sock = dir.resolve("end.sock");
        AtomicReference<VhostUserBackend.SessionControl> control = new AtomicReference<>();
        RecordingBackend backend = new RecordingBackend(1L << 32, 2, new byte[12]) {
            @Override
            public void bind(SessionControl c) {
                control.set(c);
            }
        };
        try (VhostUserServer server = new VhostUserServer(sock, backend).start()) {
            assertNotNull(control.get(), "the server binds the backend");
            try (TestFrontend fe = TestFrontend.connect(sock, 2, 12)) {
                fe.startQueue(0, 0x1000, 0x2000, 0x3000, 64);
                control.get().endSession("guest memory fault on queue 0");
                assertTrue(fe.awaitDisconnect(WAIT), "the session was ended");
            }
            Await.until("session cleanup", java.time.Duration.ofSeconds(10), () -> server.sessionsEnded() == 1);
            assertEquals(1, server.sessionsFailed());
            assertEquals(1, server.stats().sessionsEndedByDevice());
            assertEquals("guest memory fault on queue 0", server.lastError());
            assertTrue(backend.events().contains("reset"));
            control.get().endSession("no session: ignored");
            try (TestFrontend fe = TestFrontend.connect(sock, 2, 12)) {
                fe.startQueue(0, 0x1000, 0x2000, 0x3000, 64);
                assertNotNull(backend.running(0));
            }
            Await.until("second session cleanup", java.time.Duration.ofSeconds(10), () -> server.sessionsEnded() == 2);
            assertEquals(1, server.sessionsFailed());
        }
    }
}
