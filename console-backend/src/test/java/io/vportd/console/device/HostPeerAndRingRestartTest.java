package io.vportd.console.device;

import io.vportd.testsupport.Await;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.control.ControlMessage;
import io.vportd.console.control.PortConfig;
import io.vportd.console.control.ResizeOrder;
import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.sys.Fd;
import io.vportd.sys.EventFd;
import io.vportd.vring.testing.GuestRam;
import io.vportd.vring.testing.RingDriver;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A generic port on a Unix socket, driven by an in-process fake guest: a host client leaving
 * while the guest has the port closed (issue 11.5), control messages facing guest buffers too
 * small for them (11.6), and a partly written transmit chain across a ring restart (11.11).
 */
@Timeout(60)
class HostPeerAndRingRestartTest {

    static final int MAX_PORTS = 2;
    static final int RING = 256;
    static final long DEADLINE_NANOS = 10_000_000_000L;

    @TempDir
    Path dir;

    private ConsoleDevice device;
    private GuestRam ram;
    private final RingDriver[] rings = new RingDriver[2 * (MAX_PORTS + 1)];
    private final Fd[] kicks = new Fd[rings.length];
    private final Fd[] calls = new Fd[rings.length];
    private final int tx1 = new QueueMap(MAX_PORTS).transmitQueue(1);
    private final List<int[]> controlSeen = new ArrayList<>();
    private Path socket;

    /** Starts the device and every queue; the control receive queue gets buffers of the given sizes. */
    private void boot(int... controlBufferSizes) throws IOException {
        socket = dir.resolve("one.sock");
        device = new ConsoleDevice(MAX_PORTS, List.of(
                new PortConfig(1, "org.test.one", false, 0, 0, ResizeOrder.COLS_ROWS, new EndpointSpec.UnixSocket(socket))));
        ram = new GuestRam(32L << 20, 1);
        GuestRings.startAll(device, ram, RING, rings, kicks, calls);
        for (int size : controlBufferSizes) {
            rings[QueueMap.CONTROL_RX].addInBuffer(size);
        }
        EventFd.signal(kicks[QueueMap.CONTROL_RX].fd());
    }

    private void start(int q, int firstAvail) {
        GuestRings.start(device, ram, RING, rings, kicks, calls, q, firstAvail);
    }

    private void guestSays(int id, int event, int value) {
        GuestRings.guestSays(rings, kicks, id, event, value, java.time.Duration.ofNanos(DEADLINE_NANOS));
    }

    /** Device ready, port 1 ready; the guest does not open it. */
    private void bringUpClosed() {
        guestSays(0xFFFFFFFF, ControlMessage.DEVICE_READY, 1);
        guestSays(1, ControlMessage.PORT_READY, 1);
    }

    /** Control messages the device has handed to the guest so far: {id, event, value, length}. */
    private List<int[]> control() {
        RingDriver.Used u;
        while ((u = rings[QueueMap.CONTROL_RX].pollUsed()) != null) {
            if (u.length() >= 8) {
                ByteBuffer b = ByteBuffer.wrap(u.data()).order(ByteOrder.LITTLE_ENDIAN);
                controlSeen.add(new int[] {b.getInt(0), b.getShort(4) & 0xffff, b.getShort(6) & 0xffff, u.length()});
            } else {
                controlSeen.add(new int[] {-1, -1, -1, u.length()});
            }
        }
        return controlSeen;
    }

    private boolean sawOpen(int id, int value) {
        return control().stream().anyMatch(m -> m[0] == id && m[1] == ControlMessage.PORT_OPEN && m[2] == value);
    }

    private PortStatus port1() {
        return device.dataPlane().ports().stream().filter(s -> s.id() == 1).findFirst().orElseThrow();
    }

    @AfterEach
    void shutdown() {
        GuestRings.closeAll(device, rings, kicks, calls, ram);
    }

    private static void await(String what, BooleanSupplier condition) {
        Await.until(what, java.time.Duration.ofNanos(DEADLINE_NANOS), condition);
    }

    private SocketChannel connect() throws IOException {
        SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
        c.connect(UnixDomainSocketAddress.of(socket));
        return c;
    }

    @Test
    void aHostClientLeavingWhileTheGuestHasThePortClosedIsNoticed() throws IOException {
        boot(4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096);
        bringUpClosed();
        try (SocketChannel first = connect()) {
            await("the first client connected", () -> port1().hostConnected());
            await("PORT_OPEN 1 to the guest", () -> sawOpen(1, 1));
        }
        await("the departed client noticed although the guest has the port closed", () -> !port1().hostConnected());
        await("PORT_OPEN 0 to the guest", () -> sawOpen(1, 0));
        try (SocketChannel second = connect()) {
            await("a new client is taken", () -> port1().hostConnected());
        }
    }

    @Test
    void controlMessagesWaitForAGuestBufferThatFits() {
        assertTrue(ControlMessage.HEADER_SIZE > 4);
        try {
            boot(4, 4, 4);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        guestSays(0xFFFFFFFF, ControlMessage.DEVICE_READY, 1);
        await("the three small buffers given back", () -> control().size() == 3);
        for (int[] m : control()) {
            assertEquals(0, m[3], "a too-small buffer comes back empty, nothing truncated");
        }
        assertEquals(3, device.dataPlane().counters().controlTruncated());
        rings[QueueMap.CONTROL_RX].addInBuffer(4096);
        rings[QueueMap.CONTROL_RX].addInBuffer(4096);
        EventFd.signal(kicks[QueueMap.CONTROL_RX].fd());
        await("PORT_ADD in a buffer that fits", () -> control().size() >= 4);
        int[] add = control().get(3);
        assertArrayEquals(new int[] {1, ControlMessage.PORT_ADD, 1, ControlMessage.HEADER_SIZE}, add);
    }

    @Test
    void noByteIsSentTwiceWhenTheRingRestartsUnderAPartlyWrittenChain() throws IOException {
        boot(4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096);
        bringUpClosed();
        byte[] data = new byte[1 << 20]; // far more than the socket buffers hold
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 31 + (i >>> 8));
        }
        try (SocketChannel host = connect()) {
            await("the client connected", () -> port1().hostConnected());
            rings[tx1].addOutBuffer(data);
            EventFd.signal(kicks[tx1].fd());
            await("the chain partly written and held",
                    () -> port1().holdingGuestData() && port1().counters().get(PortCounters.BYTES_TO_HOST) > 0);
            long before = port1().counters().get(PortCounters.BYTES_TO_HOST);
            assertTrue(before < data.length, "the host took only part of the chain: " + before);

            int next = device.stopQueue(tx1); // as SET_VRING_CALL or a memory-table change does
            assertEquals(0, next, "the held chain is offered again");
            start(tx1, next);
            EventFd.signal(kicks[tx1].fd());

            ByteArrayOutputStream got = new ByteArrayOutputStream();
            ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
            host.configureBlocking(false);
            long deadline = System.nanoTime() + DEADLINE_NANOS;
            // Read until the chain is complete and everything it carried has arrived.
            while ((got.size() < data.length || rings[tx1].usedIdx() != 1) && System.nanoTime() < deadline) {
                buf.clear();
                int n = host.read(buf);
                if (n > 0) {
                    got.write(buf.array(), 0, n);
                } else {
                    LockSupport.parkNanos(200_000);
                }
            }
            await("the chain completed", () -> rings[tx1].usedIdx() == 1);
            LockSupport.parkNanos(100_000_000L); // anything sent twice would arrive by now
            buf.clear();
            int extra;
            while ((extra = host.read(buf)) > 0) {
                got.write(buf.array(), 0, extra);
                buf.clear();
            }
            assertEquals(data.length, got.size(), "bytes the host received (no byte twice, none lost)");
            assertArrayEquals(data, got.toByteArray());
        }
    }
}
