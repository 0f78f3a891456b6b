package io.vportd.console.endpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.testing.FdLimit;
import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.Epoll;
import io.vportd.sys.Io;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Endpoint faults from the hardening issue: a process out of descriptors, files created too
 * open, sinks that block or fail, and a terminal's file status flags.
 */
@Timeout(60)
class EndpointHardeningTest {

    @TempDir
    Path dir;

    @Test
    void listenerOutOfDescriptorsLeavesTheReadinessSetAndComesBack() throws Exception {
        UnixClientEndpointTest.Host host = new UnixClientEndpointTest.Host();
        Path sock = dir.resolve("port.sock");
        UnixServerEndpoint e = new UnixServerEndpoint(sock, "port 3");
        e.open();
        e.start(host, 3);
        // Classes load from target/classes folders, which takes a descriptor: load what the
        // failing path uses before the limit is lowered.
        Errno.describe(Errno.EMFILE);
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(sock))) {
            host.calls.clear();
            try (FdLimit none = FdLimit.exhaust()) {
                e.onListenReady(Epoll.EPOLLIN); // accept4 fails with EMFILE: the client stays queued
            }
            assertFalse(e.connected());
            assertEquals(1, e.acceptFailures());
            assertEquals(1, e.metrics().metrics().stream()
                    .filter(m -> m.name().equals("vportd_port_accept_failures_total"))
                    .findFirst().orElseThrow().value().getAsLong(), "counted where metrics see it");
            assertTrue(e.listenerPaused());
            // Without the pause the listener stays in the set and stays readable: a busy loop.
            assertEquals(List.of("unwatch"), host.calls, "the readable listener left the readiness set");
            assertTrue(e.wantsTicks(), "the data plane must tick the endpoint to bring it back");
            e.tick(System.nanoTime()); // before the back-off ends: nothing
            assertEquals(List.of("unwatch"), host.calls);
            e.tick(System.nanoTime() + StreamEndpoint.ACCEPT_PAUSE_MAX_MS * 1_000_000L);
            assertEquals(List.of("unwatch", "watch 3 role " + EndpointHost.ROLE_LISTEN, "watch 3 role " + EndpointHost.ROLE_CONNECTION, "connected 3"), host.calls,
                    "after the back-off the listener is watched again and the waiting client accepted");
            assertTrue(e.connected());
            assertFalse(e.wantsTicks());
        } finally {
            e.close();
        }
    }

    @Test
    void fileEndpointCreatesItsFilePrivate() throws Exception {
        UnixClientEndpointTest.Host host = new UnixClientEndpointTest.Host();
        Path log = dir.resolve("guest.log");
        FileEndpoint e = new FileEndpoint(log, "port 4");
        e.open();
        e.start(host, 4);
        e.close();
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(log)));
    }

    @Test
    void fileEndpointWritesThroughItsPumpAndTheDataPlaneSideNeverBlocks() throws Exception {
        UnixClientEndpointTest.Host host = new UnixClientEndpointTest.Host();
        Path log = dir.resolve("out.log");
        FileEndpoint e = new FileEndpoint(log, "port 5");
        e.open();
        e.start(host, 5);
        assertTrue(Io.isNonBlocking(e.outputFd()), "the data plane writes a non-blocking descriptor");
        byte[] data = pattern(300_000);
        writeAllNonBlocking(e.outputFd(), data);
        e.close();
        BlockingFdBridge.awaitOutputPumps(10_000);
        assertArrayEquals(data, Files.readAllBytes(log));
    }

    @Test
    void failingSinkIsRetriedUntilItTakesTheBytesNothingLostOrReordered() throws Exception {
        AtomicInteger failuresLeft = new AtomicInteger(5);
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        BlockingFdBridge.Sink flaky = (addr, len) -> {
            if (failuresLeft.getAndDecrement() > 0) {
                return -Errno.ENOSPC; // the disk is full for a while
            }
            int n = (int) Math.min(len, 1000);
            byte[] b = MemorySegment.ofAddress(addr).reinterpret(n).toArray(ValueLayout.JAVA_BYTE);
            synchronized (got) {
                got.write(b, 0, n);
            }
            return n;
        };
        io.vportd.telemetry.MetricSet counters = new io.vportd.telemetry.MetricSet();
        BlockingFdBridge b = BlockingFdBridge.toSink(null, flaky, "port 6", "a flaky disk", counters);
        byte[] data = pattern(50_000);
        writeAllNonBlocking(b.fd(), data);
        b.close();
        assertTrue(b.awaitPump(20_000));
        assertEquals(5, b.errors(), "every failure counted");
        assertEquals(5, counters.metrics().stream().filter(m -> m.name().equals("vportd_port_pump_errors_total"))
                .findFirst().orElseThrow().value().getAsLong(), "and exported");
        assertEquals(0, b.abandoned());
        synchronized (got) {
            assertArrayEquals(data, got.toByteArray());
        }
    }

    @Test
    void stalledStandardOutputDoesNotBlockTheDataPlaneSide() throws Exception {
        Fd[] stdout = Io.pipe(); // nobody reads [0]: a pipe of a stuck consumer
        Fd[] stdin = Io.pipe();
        UnixClientEndpointTest.Host host = new UnixClientEndpointTest.Host();
        StdioEndpoint e = new StdioEndpoint("port 0", stdin[0].fd(), stdout[1].fd());
        e.open();
        e.start(host, 0);
        try {
            int fd = e.outputFd();
            assertTrue(Io.isNonBlocking(fd));
            long t0 = System.nanoTime();
            byte[] chunk = pattern(65536);
            long total = 0;
            try (Arena a = Arena.ofConfined()) {
                MemorySegment s = a.allocate(chunk.length);
                s.copyFrom(MemorySegment.ofArray(chunk));
                long n;
                while ((n = Io.write(fd, s.address(), chunk.length)) > 0) {
                    total += n;
                }
                assertEquals(-Errno.EAGAIN, n, "a full sink answers EAGAIN at once: the console backlog takes over");
            }
            assertTrue(System.nanoTime() - t0 < 10_000_000_000L);
            assertTrue(total > 0);
            assertFalse(Io.isNonBlocking(stdin[0].fd()), "standard input keeps its blocking mode");
            assertFalse(Io.isNonBlocking(stdout[1].fd()), "standard output keeps its blocking mode");
        } finally {
            e.close();
            stdout[0].closeQuietly(); // the pump's writes now fail, and it gives up after its grace
            // Only then may the descriptor it writes to be closed: a number closed under a pump that
            // still retries is soon another test's file, which would then receive guest output.
            assertTrue(awaitOutputPumps(), "the output pump gave up its stuck sink");
            stdin[1].closeQuietly();
            stdout[1].closeQuietly();
            stdin[0].closeQuietly();
        }
    }

    @Test
    void standardInputReachesTheDataPlaneSideAndEndsWithEndOfFile() throws Exception {
        Fd[] stdout = Io.pipe();
        Fd[] stdin = Io.pipe();
        UnixClientEndpointTest.Host host = new UnixClientEndpointTest.Host();
        StdioEndpoint e = new StdioEndpoint("port 0", stdin[0].fd(), stdout[1].fd());
        e.open();
        e.start(host, 0);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(16);
            s.copyFrom(MemorySegment.ofArray("hello".getBytes()));
            assertEquals(5, Io.write(stdin[1].fd(), s.address(), 5));
            stdin[1].closeQuietly();
            MemorySegment r = a.allocate(16);
            StringBuilder got = new StringBuilder();
            long deadline = System.nanoTime() + 10_000_000_000L;
            long n;
            while (true) {
                n = Io.read(e.inputFd(), r.address(), 16);
                if (n > 0) {
                    got.append(new String(r.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE)));
                } else if (n == 0 || System.nanoTime() > deadline) {
                    break;
                } else {
                    Thread.sleep(5);
                }
            }
            assertEquals("hello", got.toString());
            assertEquals(0, n, "end of standard input is end of file on the data plane's side");
        } finally {
            e.close();
            stdout[0].closeQuietly();
            stdout[1].closeQuietly();
            stdin[0].closeQuietly();
        }
    }

    /** Waits for every output pump of this JVM to end (a closed endpoint's pump gives up within its grace and one retry). */
    private static boolean awaitOutputPumps() {
        BlockingFdBridge.awaitOutputPumps(BlockingFdBridge.CLOSE_GRACE_MS + BlockingFdBridge.MAX_RETRY_MS + 2000);
        return Thread.getAllStackTraces().keySet().stream()
                .noneMatch(t -> t.isAlive() && t.getName().equals("vportd-sink-port-0"));
    }

    private static byte[] pattern(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 31 + (i >>> 8));
        }
        return b;
    }

    private static void writeAllNonBlocking(int fd, byte[] data) throws InterruptedException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(data.length);
            s.copyFrom(MemorySegment.ofArray(data));
            long off = 0;
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (off < data.length) {
                long n = Io.write(fd, s.address() + off, data.length - off);
                if (n > 0) {
                    off += n;
                } else if (n == -Errno.EAGAIN && System.nanoTime() < deadline) {
                    Thread.sleep(1);
                } else {
                    throw new AssertionError("write failed: " + n);
                }
            }
        }
    }
}
