package io.vportd.console.device;

import io.vportd.testsupport.Await;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.api.DataPlanePorts;
import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.control.PortConfig;
import io.vportd.sys.MemFd;
import io.vportd.vhost.VhostUserServer;
import io.vportd.vhost.testing.TestFrontend;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 11.3: a frontend that truncates its guest memory file after mapping makes the data plane
 * fault (SIGBUS, surfacing as InternalError). That must end the session only, be counted, and
 * leave a data plane that serves the next session. Unsealed memory is refused unless allowed.
 */
class GuestMemoryFaultTest {

    private static final int MAX_PORTS = 2;
    private static final int QUEUES = 2 * (MAX_PORTS + 1);
    private static final Duration WAIT = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    private static ConsoleDevice device() throws IOException {
        return new ConsoleDevice(MAX_PORTS, List.of(new PortConfig(1, "org.test.null", false, 0, 0, null,
                new EndpointSpec.Null())));
    }

    @Test
    void truncatedMemoryEndsTheSessionOnlyAndTheNextSessionWorks() throws Exception {
        Path sock = dir.resolve("fault.sock");
        try (ConsoleDevice device = device();
             VhostUserServer server = new VhostUserServer(sock, device,
                     new VhostUserServer.Options(true, VhostUserServer.DEFAULT_HANDSHAKE_TIMEOUT)).start()) {
            try (TestFrontend fe = TestFrontend.connect(sock, TestFrontend.Options.defaults(QUEUES, 12).withUnsealedMemory())) {
                fe.startQueue(QueueMap.CONTROL_TX, 0x1000, 0x2000, 0x3000, 64);
                MemFd.truncate(fe.memfd(), 0); // the frontend pulls the memory away under the mapping
                fe.kick(QueueMap.CONTROL_TX);
                assertTrue(fe.awaitDisconnect(WAIT), "the session was ended");
            }
            Await.until("session cleanup", java.time.Duration.ofSeconds(10), () -> server.sessionsEnded() == 1);
            assertEquals(1, device.dataPlane().counters().guestMemoryFaults());
            assertEquals(1, server.stats().sessionsEndedByDevice());
            assertTrue(server.lastError().contains("guest memory fault"), server.lastError());
            device.dataPlane().metrics().register(server.stats().metrics());
            String metrics = new DataPlanePorts(device.dataPlane()).metrics();
            assertTrue(metrics.contains("vportd_guest_memory_faults_total 1"), metrics);
            assertTrue(metrics.contains("vportd_vhost_sessions_ended_by_device_total 1"), metrics);

            // The next frontend (sealed memory, as QEMU) gets a working data plane.
            try (TestFrontend fe = TestFrontend.connect(sock, QUEUES, 12)) {
                fe.startQueue(QueueMap.CONTROL_TX, 0x1000, 0x2000, 0x3000, 64);
                fe.startQueue(QueueMap.CONTROL_RX, 0x5000, 0x6000, 0x7000, 64);
                fe.kick(QueueMap.CONTROL_TX);
                assertEquals(2, device.dataPlane().ports().size() + 1, "the data plane still answers");
                assertEquals(0, fe.stopQueue(QueueMap.CONTROL_TX));
            }
            Await.until("second session cleanup", java.time.Duration.ofSeconds(10), () -> server.sessionsEnded() == 2);
            assertEquals(1, server.sessionsFailed(), "only the faulting session failed");
            assertEquals(1, device.dataPlane().counters().guestMemoryFaults());
        }
    }

    @Test
    void unsealedMemoryIsRefusedByDefault() throws Exception {
        Path sock = dir.resolve("sealed.sock");
        try (ConsoleDevice device = device();
             VhostUserServer server = new VhostUserServer(sock, device).start()) {
            IOException e = assertThrows(IOException.class,
                    () -> TestFrontend.connect(sock, TestFrontend.Options.defaults(QUEUES, 12).withUnsealedMemory()));
            assertTrue(e.getMessage().contains("ADD_MEM_REG failed"), e.getMessage());
            Await.until("session cleanup", java.time.Duration.ofSeconds(10), () -> server.sessionsEnded() == 1);
            assertEquals(1, server.stats().unsealedMemoryRefused());
            assertTrue(server.lastError().contains("not sealed against shrinking"), server.lastError());
        }
    }
}
