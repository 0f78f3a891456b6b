package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.control.ControlMessage;
import io.vportd.console.control.PortConfig;
import io.vportd.console.control.ResizeOrder;
import io.vportd.console.endpoint.Endpoint;
import io.vportd.console.endpoint.EndpointHost;
import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.sys.Epoll;
import io.vportd.sys.Errno;
import io.vportd.sys.EventFd;
import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.sys.NativeException;
import io.vportd.testsupport.Await;
import io.vportd.vhost.QueueSetup;
import io.vportd.vring.testing.GuestRam;
import io.vportd.vring.testing.RingDriver;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Several chains per system call (issue 14): transmit chains gathered into one writev, host bytes
 * scattered into several receive buffers with one readv, and a gathered writev the host took only
 * partly (exact bytes, completion order, the rest held). The system calls are counted on the
 * data-plane thread (read-type and write-type calls of its /proc task entry). Also the poll
 * window's rule: open after small messages, closed by bulk.
 */
@Timeout(60)
class GatherScatterTest {

    static final int MAX_PORTS = 2;
    /** Ring size of every queue (a test may raise it before {@link #boot}). */
    private int ring = 256;
    static final Duration DEADLINE = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    private ConsoleDevice device;
    private GuestRam ram;
    private final RingDriver[] rings = new RingDriver[2 * (MAX_PORTS + 1)];
    private final Fd[] kicks = new Fd[rings.length];
    private final Fd[] calls = new Fd[rings.length];
    private final QueueMap map = new QueueMap(MAX_PORTS);
    private final int tx1 = map.transmitQueue(1);
    private final int rx1 = map.receiveQueue(1);

    private void boot(java.util.function.Function<PortConfig, Endpoint> endpoints, EndpointSpec spec) throws IOException {
        device = new ConsoleDevice(MAX_PORTS, List.of(
                new PortConfig(1, "org.test.one", false, 0, 0, ResizeOrder.COLS_ROWS, spec)), endpoints);
        ram = new GuestRam(64L << 20, 1);
        GuestRings.startAll(device, ram, ring, rings, kicks, calls);
        for (int i = 0; i < 8; i++) {
            rings[QueueMap.CONTROL_RX].addInBuffer(4096);
        }
        EventFd.signal(kicks[QueueMap.CONTROL_RX].fd());
        guestSays(0xFFFFFFFF, ControlMessage.DEVICE_READY, 1);
        guestSays(1, ControlMessage.PORT_READY, 1);
        guestSays(1, ControlMessage.PORT_OPEN, 1);
    }

    private void guestSays(int id, int event, int value) {
        GuestRings.guestSays(rings, kicks, id, event, value, DEADLINE);
    }

    @AfterEach
    void shutdown() {
        GuestRings.closeAll(device, rings, kicks, calls, ram);
    }

    private static void await(String what, BooleanSupplier condition) {
        Await.until(what, DEADLINE, condition);
    }

    private PortStatus port1() {
        return device.dataPlane().ports().stream().filter(s -> s.id() == 1).findFirst().orElseThrow();
    }

    /** syscr + syscw of the data-plane thread(s) of this JVM (their /proc task entries). */
    static long dataPlaneSyscalls(String which) {
        long n = 0;
        try (var tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path t : tasks.toList()) {
                String comm;
                try {
                    comm = Files.readString(t.resolve("comm")).trim();
                } catch (IOException gone) {
                    continue;
                }
                if (!"vportd-dataplane".startsWith(comm) || comm.length() < 12) {
                    continue;
                }
                for (String line : Files.readAllLines(t.resolve("io"))) {
                    if (line.startsWith(which + ":")) {
                        n += Long.parseLong(line.substring(which.length() + 1).trim());
                    }
                }
            }
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        return n;
    }

    static byte[] pattern(int len, int seed) {
        byte[] b = new byte[len];
        for (int i = 0; i < len; i++) {
            b[i] = (byte) (i * 7 + (i >>> 8) + seed);
        }
        return b;
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            o.writeBytes(p);
        }
        return o.toByteArray();
    }

    private SocketChannel connect(Path socket) throws IOException {
        SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
        c.connect(UnixDomainSocketAddress.of(socket));
        await("the host client connected", () -> port1().hostConnected());
        return c;
    }

    @Test
    void manyTransmitChainsGoToTheHostInOneWritev() throws IOException {
        Path socket = dir.resolve("one.sock");
        boot(ConsoleDevice::endpointFor, new EndpointSpec.UnixSocket(socket));
        try (SocketChannel host = connect(socket)) {
            int chains = 32;
            byte[][] data = new byte[chains][];
            long before = dataPlaneSyscalls("syscw");
            for (int i = 0; i < chains; i++) {
                data[i] = pattern(1000 + i, i);
                rings[tx1].addOutBuffer(data[i]);
            }
            EventFd.signal(kicks[tx1].fd());
            byte[] expected = concat(data);
            ByteBuffer got = ByteBuffer.allocate(expected.length);
            while (got.hasRemaining()) {
                host.read(got);
            }
            assertArrayEquals(expected, got.array(), "every byte, in order");
            await("all chains completed", () -> rings[tx1].usedIdx() == chains);
            long writes = dataPlaneSyscalls("syscw") - before;
            // One writev for the 32 chains and one interrupt; one writev per chain would be 32 or more.
            assertTrue(writes <= 4, "write-type system calls on the data-plane thread: " + writes);
            List<Integer> order = new ArrayList<>();
            RingDriver.Used u;
            while ((u = rings[tx1].pollUsed()) != null) {
                order.add(u.id());
            }
            assertEquals(chains, order.size());
            for (int i = 1; i < chains; i++) {
                assertTrue(order.get(i) != order.get(i - 1));
            }
        }
    }

    @Test
    void hostBytesAreScatteredIntoSeveralReceiveBuffersPerReadv() throws IOException {
        Path socket = dir.resolve("one.sock");
        boot(ConsoleDevice::endpointFor, new EndpointSpec.UnixSocket(socket));
        try (SocketChannel host = connect(socket)) {
            int buffers = 40;
            List<Integer> heads = new ArrayList<>();
            for (int i = 0; i < buffers; i++) {
                heads.add(rings[rx1].addInBuffer(1024));
            }
            EventFd.signal(kicks[rx1].fd());
            await("the buffers seen", () -> true);
            byte[] data = pattern(20 * 1024 + 100, 3);
            long before = dataPlaneSyscalls("syscr");
            host.write(ByteBuffer.wrap(data));
            await("21 buffers filled", () -> rings[rx1].usedIdx() == 21);
            long reads = dataPlaneSyscalls("syscr") - before;
            // 1, 2, 4, 8 then the rest: 5 readv and one that finds nothing; one per buffer would be 22.
            assertTrue(reads <= 10, "read-type system calls on the data-plane thread: " + reads);
            ByteArrayOutputStream seen = new ByteArrayOutputStream();
            for (int i = 0; i < 21; i++) {
                RingDriver.Used u = rings[rx1].pollUsed();
                assertEquals(heads.get(i), u.id(), "buffers completed in ring order");
                assertEquals(i < 20 ? 1024 : 100, u.length());
                seen.writeBytes(u.data());
            }
            assertArrayEquals(data, seen.toByteArray());
            byte[] more = pattern(3000, 9);
            host.write(ByteBuffer.wrap(more));
            await("the rest in the buffers handed back", () -> rings[rx1].usedIdx() == 24);
            ByteArrayOutputStream rest = new ByteArrayOutputStream();
            for (int i = 21; i < 24; i++) {
                RingDriver.Used u = rings[rx1].pollUsed();
                assertEquals(heads.get(i), u.id(), "buffers a readv did not fill were handed back and used in turn");
                rest.writeBytes(u.data());
            }
            assertArrayEquals(more, rest.toByteArray());
            // The 25th buffer is held for more host bytes; removing the port gives it back unused.
            await("the next buffer held", () -> port1().counters().get(PortCounters.CHAINS_TO_GUEST) == 24);
            device.dataPlane().removePort(1);
            assertEquals(24, rings[rx1].usedIdx(), "the held buffer is not completed");
            assertEquals(24, device.stopQueue(rx1), "it is handed back: the ring resumes at it");
        }
    }

    /**
     * The poll window (--poll-us) opens after a reply-sized message and closes after bulk, both
     * ways: a stream's writer and reader need the CPU a polling data-plane thread would take, a
     * request's answer does not.
     */
    @Test
    void aSmallMessageOpensThePollWindowAndBulkClosesIt() throws IOException {
        Path socket = dir.resolve("one.sock");
        boot(ConsoleDevice::endpointFor, new EndpointSpec.UnixSocket(socket));
        try (SocketChannel host = connect(socket)) {
            DataPlane dp = device.dataPlane();
            dp.setPollMicros(PollWindow.MAX_MICROS); // a second: open through every step below
            assertFalse(dp.pollWindowOpen(), "nothing moved yet");
            byte[] ask = pattern(64, 1);
            rings[tx1].addOutBuffer(ask);
            EventFd.signal(kicks[tx1].fd());
            assertArrayEquals(ask, readExactly(host, ask.length));
            assertTrue(dp.pollWindowOpen(), "64 bytes to the host open the window");

            for (int i = 0; i < 16; i++) {
                rings[rx1].addInBuffer(4096);
            }
            EventFd.signal(kicks[rx1].fd());
            host.write(ByteBuffer.wrap(pattern(16 * 4096, 2)));
            await("the host's 64 KiB in 16 buffers", () -> rings[rx1].usedIdx() == 16);
            assertFalse(dp.pollWindowOpen(), "64 KiB to the guest close it");

            byte[] answer = pattern(100, 3);
            rings[rx1].addInBuffer(4096);
            EventFd.signal(kicks[rx1].fd());
            host.write(ByteBuffer.wrap(answer));
            await("the 100-byte answer", () -> rings[rx1].usedIdx() == 17);
            assertTrue(dp.pollWindowOpen(), "a small answer opens it again");

            rings[tx1].addOutBuffer(pattern(8192, 4));
            EventFd.signal(kicks[tx1].fd());
            readExactly(host, 8192);
            await("the 8 KiB chain completed", () -> rings[tx1].usedIdx() == 2);
            assertFalse(dp.pollWindowOpen(), "8 KiB to the host close it");
        }
    }

    private static byte[] readExactly(SocketChannel c, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (c.read(b) < 0) {
                throw new IOException("end of file after " + b.position() + " of " + n + " bytes");
            }
        }
        return b.array();
    }

    /**
     * A readv that gets less than it offered found the host's socket empty: the next read waits
     * for the next edge instead of a readv that would only find nothing (one read per host write,
     * not two). And a host that writes and hangs up still has its bytes read and its end of file
     * seen, though no edge follows it.
     */
    @Test
    void aReadThatEmptiesTheHostSocketIsTheLastUntilMoreComes() throws IOException {
        Path socket = dir.resolve("one.sock");
        boot(ConsoleDevice::endpointFor, new EndpointSpec.UnixSocket(socket));
        SocketChannel host = connect(socket);
        for (int i = 0; i < 64; i++) {
            rings[rx1].addInBuffer(4096);
        }
        EventFd.signal(kicks[rx1].fd());
        await("the host connected", () -> port1().hostConnected());
        int pieces = 20;
        ByteArrayOutputStream sent = new ByteArrayOutputStream();
        long before = dataPlaneSyscalls("syscr");
        for (int i = 0; i < pieces; i++) {
            byte[] d = pattern(1000 + i, 60 + i);
            sent.writeBytes(d);
            int used = i + 1;
            host.write(ByteBuffer.wrap(d));
            await("piece " + i + " in a buffer", () -> rings[rx1].usedIdx() == used); // reads guest memory: no command
        }
        long reads = dataPlaneSyscalls("syscr") - before;
        assertTrue(reads <= pieces + 2, "read-type system calls for " + pieces + " host writes, each read alone: " + reads);
        byte[] last = pattern(500, 99);
        sent.writeBytes(last);
        host.write(ByteBuffer.wrap(last));
        host.close();
        await("the last bytes in a buffer", () -> rings[rx1].usedIdx() == pieces + 1);
        await("the host's end of file seen", () -> !port1().hostConnected());
        ByteArrayOutputStream seen = new ByteArrayOutputStream();
        for (int i = 0; i <= pieces; i++) {
            seen.writeBytes(rings[rx1].pollUsed().data());
        }
        assertArrayEquals(sent.toByteArray(), seen.toByteArray(), "every byte once, in order");
    }

    /**
     * A writev the host takes only partly found its pipe full: the port waits for EPOLLOUT at once
     * instead of a writev that would only be refused (one write per fill, not two), and the edge
     * that comes when the host reads brings the rest.
     */
    @Test
    void aWriteTheHostTakesOnlyPartlyIsTheLastUntilItMakesRoom() throws IOException {
        PipeEndpoint pipe = new PipeEndpoint();
        int capacity = pipeCapacity(pipe);
        boot(c -> pipe, new EndpointSpec.Null());
        await("the pipe connected", () -> port1().hostConnected());
        byte[] big = pattern(2 * capacity + 100, 5);
        long before = dataPlaneSyscalls("syscw");
        int head = rings[tx1].addOutChain(java.util.Arrays.copyOfRange(big, 0, capacity),
                java.util.Arrays.copyOfRange(big, capacity, big.length));
        EventFd.signal(kicks[tx1].fd());
        await("the pipe full", () -> port1().counters().get(PortCounters.BYTES_TO_HOST) == capacity);
        long writes = dataPlaneSyscalls("syscw") - before;
        assertEquals(1, writes, "write-type system calls until the pipe was full");
        assertEquals(1, port1().counters().get(PortCounters.HELD_WAITS), "one wait for room, counted");
        assertArrayEquals(big, drainAtLeast(pipe, big.length, "the whole chain through the pipe"),
                "nothing lost, repeated or reordered");
        await("the chain completed", () -> rings[tx1].usedIdx() == 1);
        assertEquals(head, rings[tx1].pollUsed().id());
    }

    /** A port whose host side is a pipe the test drains: its capacity makes partial writes exact. */
    static final class PipeEndpoint implements Endpoint {
        final Fd read;
        final Fd write;
        boolean connected;

        PipeEndpoint() throws NativeException {
            Fd[] p = Io.pipe();
            read = p[0];
            write = p[1];
            Io.setNonBlocking(read.fd(), true);
            Io.setNonBlocking(write.fd(), true);
        }

        @Override
        public void start(EndpointHost host, int port) throws NativeException {
            host.watch(write.fd(), Epoll.EPOLLOUT | Epoll.EPOLLET, port, EndpointHost.ROLE_CONNECTION);
            connected = true;
            host.hostConnected(port);
        }

        @Override
        public boolean connected() {
            return connected;
        }

        @Override
        public int outputFd() {
            return write.fd();
        }

        @Override
        public int inputFd() {
            return -1;
        }

        @Override
        public void hostDisconnected() {
            connected = false;
        }

        @Override
        public String describe() {
            return "test pipe";
        }

        @Override
        public io.vportd.console.endpoint.Handed handover() {
            return io.vportd.console.endpoint.Handed.reopen(); // the test keeps the pipe; nothing moves
        }

        @Override
        public void close() {
            read.closeQuietly();
            write.closeQuietly();
        }
    }

    private static String describe(byte[] b) {
        return b.length + " bytes " + java.util.HexFormat.of().formatHex(b, 0, Math.min(32, b.length)) + " \""
                + new String(b, 0, Math.min(64, b.length), java.nio.charset.StandardCharsets.ISO_8859_1).replaceAll("[^ -~]", ".") + "\"";
    }

    private static String fdTarget(int fd) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
        } catch (IOException e) {
            return e.toString();
        }
    }

    /** Fills the empty pipe until it refuses, empties it again; returns what it held. */
    private static int pipeCapacity(PipeEndpoint p) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(4096);
            int total = 0;
            long n;
            while ((n = Io.write(p.write.fd(), buf.address(), 4096)) > 0) {
                total += (int) n;
            }
            assertEquals(-Errno.EAGAIN, n);
            while (Io.read(p.read.fd(), buf.address(), 4096) > 0) {
                // empty it
            }
            return total;
        }
    }

    /** Drains the pipe as the data plane fills it until {@code n} bytes came (or the deadline). */
    private static byte[] drainAtLeast(PipeEndpoint p, int n, String what) {
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        await(what, () -> {
            got.writeBytes(drain(p, Integer.MAX_VALUE));
            return got.size() >= n;
        });
        return got.toByteArray();
    }

    /** Reads what the pipe holds now, at most {@code max} bytes. */
    private static byte[] drain(PipeEndpoint p, int max) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(65536);
            long n;
            while (o.size() < max && (n = Io.read(p.read.fd(), buf.address(), Math.min(65536, max - o.size()))) > 0) {
                o.writeBytes(buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE));
            }
        }
        return o.toByteArray();
    }

    @Test
    void aGatheredWritevCutInTheThirdChainKeepsTheRestHeldExactly() throws IOException {
        // Descriptor numbers other tests of this JVM closed lately go to placeholders, not to the
        // pipe: a helper thread of an earlier test that outlived its descriptor was seen writing
        // into whatever took its number next (see the report of issue 14).
        List<Fd> placeholders = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            placeholders.addAll(List.of(Io.pipe()));
        }
        try {
            cutInTheThirdChain();
        } finally {
            placeholders.forEach(Fd::closeQuietly);
        }
    }

    private void cutInTheThirdChain() throws IOException {
        PipeEndpoint pipe = new PipeEndpoint();
        int capacity = pipeCapacity(pipe);
        assertTrue(capacity >= 8192 && capacity % 4096 == 0, "pipe capacity " + capacity);
        String target = fdTarget(pipe.write.fd());
        boot(c -> pipe, new EndpointSpec.Null());
        await("the pipe connected", () -> port1().hostConnected());
        byte[] a = pattern(capacity / 4, 1);
        byte[] b = pattern(capacity / 4, 2);
        byte[] c = pattern(capacity, 3);   // the pipe holds only its first half
        byte[] d = pattern(1000, 4);
        int ha = rings[tx1].addOutBuffer(a);
        int hb = rings[tx1].addOutBuffer(b);
        int hc = rings[tx1].addOutChain(java.util.Arrays.copyOfRange(c, 0, 100),
                java.util.Arrays.copyOfRange(c, 100, capacity)); // cut inside its second descriptor
        int hd = rings[tx1].addOutBuffer(d);
        EventFd.signal(kicks[tx1].fd());
        try {
            await("the pipe full and the rest held", () -> port1().holdingGuestData()
                    && port1().counters().get(PortCounters.BYTES_TO_HOST) == capacity);
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + ": capacity " + capacity + ", bytes to host "
                    + port1().counters().get(PortCounters.BYTES_TO_HOST) + ", holding " + port1().holdingGuestData()
                    + ", used " + rings[tx1].usedIdx() + ", host connected " + port1().hostConnected()
                    + ", held waits " + port1().counters().get(PortCounters.HELD_WAITS)
                    + ", write errors " + port1().counters().get(PortCounters.HOST_WRITE_ERRORS)
                    + ", fd " + pipe.write.fd() + " -> " + fdTarget(pipe.write.fd()) + " (was " + target + ")"
                    + ", in the pipe: " + describe(drain(pipe, Integer.MAX_VALUE)), e);
        }
        await("the two chains taken whole completed", () -> rings[tx1].usedIdx() == 2);
        assertEquals(ha, rings[tx1].pollUsed().id());
        assertEquals(hb, rings[tx1].pollUsed().id());
        assertEquals(2, rings[tx1].usedIdx(), "the cut chain is not completed while the rest of it waits");
        byte[] first = drain(pipe, capacity);
        assertArrayEquals(java.util.Arrays.copyOfRange(concat(a, b, c), 0, capacity), first,
                "exactly the two chains and half of the third");
        byte[] expectedRest = concat(java.util.Arrays.copyOfRange(c, capacity / 2, capacity), d);
        assertArrayEquals(expectedRest, drainAtLeast(pipe, expectedRest.length, "the rest of the third chain and the fourth"),
                "nothing lost, repeated or reordered");
        await("the last two chains completed", () -> rings[tx1].usedIdx() == 4);
        assertEquals(hc, rings[tx1].pollUsed().id());
        assertEquals(hd, rings[tx1].pollUsed().id());
        assertEquals(capacity / 2L * 3 + 1000, port1().counters().get(PortCounters.BYTES_TO_HOST));
    }

    /** Restarts queue {@code q} at avail index {@code firstAvail}, as a new SET_VRING_BASE does. */
    private void restart(int q, int firstAvail) {
        device.startQueue(q, new QueueSetup(q, ring, rings[q].descSegment(), rings[q].availSegment(),
                rings[q].usedSegment(), firstAvail, kicks[q].fd(), calls[q].fd(), true, ram.memory()));
    }

    /** Four chains a, b, c (two descriptors), d in one kick; the pipe takes a, b and half of c. */
    private record Cut(PipeEndpoint pipe, int capacity, byte[] a, byte[] b, byte[] c, byte[] d, int hc, int hd) {
    }

    private Cut cutInsideTheThirdChain() throws IOException {
        PipeEndpoint pipe = new PipeEndpoint();
        int capacity = pipeCapacity(pipe);
        assertTrue(capacity >= 8192 && capacity % 4096 == 0, "pipe capacity " + capacity);
        boot(x -> pipe, new EndpointSpec.Null());
        await("the pipe connected", () -> port1().hostConnected());
        byte[] a = pattern(capacity / 4, 11);
        byte[] b = pattern(capacity / 4, 12);
        byte[] c = pattern(capacity, 13);
        byte[] d = pattern(1000, 14);
        int ha = rings[tx1].addOutBuffer(a);
        int hb = rings[tx1].addOutBuffer(b);
        int hc = rings[tx1].addOutChain(java.util.Arrays.copyOfRange(c, 0, 100),
                java.util.Arrays.copyOfRange(c, 100, capacity));
        int hd = rings[tx1].addOutBuffer(d);
        EventFd.signal(kicks[tx1].fd());
        await("the pipe full and the rest held", () -> port1().holdingGuestData()
                && port1().counters().get(PortCounters.BYTES_TO_HOST) == capacity);
        await("a and b completed", () -> rings[tx1].usedIdx() == 2);
        assertEquals(ha, rings[tx1].pollUsed().id());
        assertEquals(hb, rings[tx1].pollUsed().id());
        return new Cut(pipe, capacity, a, b, c, d, hc, hd);
    }

    @Test
    void aGatheredWritevCutInsideALaterChainResumesExactlyAfterARingRestart() throws IOException {
        Cut k = cutInsideTheThirdChain();
        // The ring stops (a memory-table change, SET_VRING_CALL, a hand-over): the held third chain
        // is offered again, and the half the host took is carried, not sent twice.
        int next = device.stopQueue(tx1);
        assertEquals(2, next, "the ring resumes at the cut chain; the fourth was handed back, not taken");
        byte[] first = drain(k.pipe(), Integer.MAX_VALUE);
        assertArrayEquals(java.util.Arrays.copyOfRange(concat(k.a(), k.b(), k.c()), 0, k.capacity()), first);
        restart(tx1, next);
        EventFd.signal(kicks[tx1].fd());
        byte[] expectedRest = concat(java.util.Arrays.copyOfRange(k.c(), k.capacity() / 2, k.capacity()), k.d());
        ByteArrayOutputStream rest = new ByteArrayOutputStream();
        await("the rest of the third chain and the fourth", () -> {
            rest.writeBytes(drain(k.pipe(), Integer.MAX_VALUE));
            return rest.size() >= expectedRest.length;
        });
        await("the last two chains completed", () -> rings[tx1].usedIdx() == 4);
        rest.writeBytes(drain(k.pipe(), Integer.MAX_VALUE));
        assertArrayEquals(expectedRest, rest.toByteArray(), "nothing lost, repeated or reordered across the restart");
        assertEquals(k.hc(), rings[tx1].pollUsed().id());
        assertEquals(k.hd(), rings[tx1].pollUsed().id());
        assertEquals(k.capacity() / 2L * 3 + 1000, port1().counters().get(PortCounters.BYTES_TO_HOST));
    }

    @Test
    void aHandOverCarriesTheCutChainOfAGatheredWritevAndNothingElse() throws IOException {
        Cut k = cutInsideTheThirdChain();
        for (int q = 0; q < rings.length; q++) {
            device.stopQueue(q); // what the hand-over's GET_VRING_BASE does to every ring
        }
        DeviceSnapshot s = device.dataPlane().freezeForHandover();
        try {
            DeviceSnapshot.Port p = s.ports().stream().filter(x -> x.config().id() == 1).findFirst().orElseThrow();
            assertEquals(k.hc(), p.carriedHead(), "the cut chain");
            assertEquals(2, p.carriedAvail(), "at its place in the ring");
            assertEquals(k.capacity() / 2L, p.carriedTaken(), "with exactly the bytes the host took of it");
        } finally {
            device.dataPlane().abandonHandover();
        }
    }

    @Test
    void aChainThatComesAloneIsWrittenFromItsOwnIovecsOneWritevEach() throws IOException {
        Path socket = dir.resolve("one.sock");
        boot(ConsoleDevice::endpointFor, new EndpointSpec.UnixSocket(socket));
        try (SocketChannel host = connect(socket)) {
            // Warm the gathering path first, so that lone chains later meet a port that gathered.
            for (int i = 0; i < 8; i++) {
                rings[tx1].addOutBuffer(pattern(512, i));
            }
            EventFd.signal(kicks[tx1].fd());
            GuestRings.readExactly(host, 8 * 512);
            await("the burst completed", () -> rings[tx1].usedIdx() == 8);
            ByteArrayOutputStream sent = new ByteArrayOutputStream();
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            long before = dataPlaneSyscalls("syscw");
            int lone = 20;
            for (int i = 0; i < lone; i++) { // a slow guest: one chain, its kick, then the next
                byte[] d = pattern(700 + i, 40 + i);
                sent.writeBytes(d);
                long done = 8 + i + 1;
                rings[tx1].addOutBuffer(d);
                EventFd.signal(kicks[tx1].fd());
                got.writeBytes(GuestRings.readExactly(host, d.length));
                await("chain " + i + " completed", () -> port1().counters().get(PortCounters.CHAINS_TO_HOST) == done);
            }
            assertArrayEquals(sent.toByteArray(), got.toByteArray(), "every byte once, in order");
            long writes = dataPlaneSyscalls("syscw") - before;
            // One writev per chain (plus interrupts for the completions); never more system calls
            // per lone chain than before gathering existed.
            assertTrue(writes <= 2L * lone, "write-type system calls for " + lone + " lone chains: " + writes);
            assertEquals(8 + lone, port1().counters().get(PortCounters.CHAINS_TO_HOST));
        }
    }

    @Test
    void aChainOfMoreIovecsThanIovMaxGoesAloneInPiecesBeforeTheChainsAfterIt() throws IOException {
        ring = 2048; // room for a direct chain of more than IOV_MAX descriptors
        Path socket = dir.resolve("one.sock");
        boot(ConsoleDevice::endpointFor, new EndpointSpec.UnixSocket(socket));
        try (SocketChannel host = connect(socket)) {
            int pieces = PortPump.IOV_MAX + 76;
            byte[][] parts = new byte[pieces][];
            for (int i = 0; i < pieces; i++) {
                parts[i] = pattern(100, i);
            }
            byte[] after = pattern(3000, 99);
            int big = rings[tx1].addOutChain(parts);
            int small = rings[tx1].addOutBuffer(after);
            EventFd.signal(kicks[tx1].fd());
            byte[] expected = concat(concat(parts), after);
            assertArrayEquals(expected, GuestRings.readExactly(host, expected.length), "every byte once, in order");
            await("both chains completed", () -> rings[tx1].usedIdx() == 2);
            assertEquals(big, rings[tx1].pollUsed().id());
            assertEquals(small, rings[tx1].pollUsed().id());
        }
    }
}
