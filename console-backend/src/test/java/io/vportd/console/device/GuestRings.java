package io.vportd.console.device;

import io.vportd.sys.EventFd;
import io.vportd.sys.Fd;
import io.vportd.vring.testing.GuestRam;
import io.vportd.vring.testing.RingDriver;
import io.vportd.vhost.QueueSetup;
import java.io.IOException;

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
}
