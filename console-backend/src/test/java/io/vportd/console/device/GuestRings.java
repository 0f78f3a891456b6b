package io.vportd.console.device;

import io.vportd.sys.EventFd;
import io.vportd.sys.Fd;
import io.vportd.vring.testing.GuestRam;
import io.vportd.vring.testing.RingDriver;
import io.vportd.vhost.QueueSetup;
import java.io.IOException;
import java.time.Duration;

/**
 * The rings of a device driven in-process the way a frontend sets them up: one guest memory
 * region, the negotiated features, and for every queue a ring of its own with a kick and a call
 * eventfd. The device tests keep the arrays (they add buffers, kick and read calls themselves).
 */
public final class GuestRings {

    private GuestRings() {
    }

    /**
     * Gives {@code device} the memory of {@code ram} and every feature, fills {@code rings},
     * {@code kicks} and {@code calls} (one per queue, rings of {@code size}) and starts every
     * queue at index 0.
     */
    public static void startAll(ConsoleDevice device, GuestRam ram, int size, RingDriver[] rings, Fd[] kicks, Fd[] calls)
            throws IOException {
        device.setMemory(io.vportd.vhost.MemoryTable.unowned(ram.memory()));
        device.setFeatures(ConsoleDevice.FEATURES);
        for (int q = 0; q < rings.length; q++) {
            rings[q] = new RingDriver(ram, size, true);
            kicks[q] = EventFd.create(0, EventFd.EFD_NONBLOCK);
            calls[q] = EventFd.create(0, EventFd.EFD_NONBLOCK);
            start(device, ram, size, rings, kicks, calls, q, 0);
        }
    }

    /** Starts queue {@code q} again at {@code firstAvail} (a ring restart, as after GET_VRING_BASE). */
    public static void start(ConsoleDevice device, GuestRam ram, int size, RingDriver[] rings, Fd[] kicks, Fd[] calls,
                             int q, int firstAvail) {
        device.startQueue(q, new QueueSetup(q, size, rings[q].descSegment(), rings[q].availSegment(),
                rings[q].usedSegment(), firstAvail, kicks[q].fd(), calls[q].fd(), true, ram.memory()));
    }

    /**
     * The guest sends control message ({@code id}, {@code event}, {@code value}) on the control
     * transmit queue, kicks, and waits until the device has taken it.
     */
    public static void guestSays(RingDriver[] rings, Fd[] kicks, int id, int event, int value, Duration deadline) {
        byte[] m = new byte[8];
        io.vportd.console.control.ControlMessage.encodeHeader(m, 0, id, event, value);
        RingDriver tx = rings[QueueMap.CONTROL_TX];
        int before = tx.usedIdx();
        tx.addOutBuffer(m);
        EventFd.signal(kicks[QueueMap.CONTROL_TX].fd());
        io.vportd.testsupport.Await.until("the guest's control message taken", deadline, () -> tx.usedIdx() == before + 1);
    }

    /** Closes the device, every ring and eventfd {@link #startAll} made, and the memory (each may be missing). */
    public static void closeAll(ConsoleDevice device, RingDriver[] rings, Fd[] kicks, Fd[] calls, GuestRam ram) {
        if (device != null) {
            device.close();
        }
        for (int q = 0; q < rings.length; q++) {
            if (rings[q] != null) {
                rings[q].close();
                kicks[q].closeQuietly();
                calls[q].closeQuietly();
            }
        }
        if (ram != null) {
            ram.close();
        }
    }

    /** Exactly {@code n} bytes from a host client (blocking); end of stream before them fails the test. */
    public static byte[] readExactly(java.nio.channels.SocketChannel c, int n) throws IOException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (c.read(b) < 0) {
                throw new AssertionError("end of stream after " + b.position() + " of " + n + " bytes");
            }
        }
        return b.array();
    }
}
