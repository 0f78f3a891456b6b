package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.control.PortConfig;
import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.EventFd;
import io.vportd.sys.Io;
import io.vportd.vhost.MemoryTable;
import io.vportd.vhost.QueueSetup;
import io.vportd.vring.testing.GuestRam;
import io.vportd.vring.testing.RingDriver;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * Issues 11.1/11.2 on the data-plane side: a kick descriptor that cannot be drained stops its
 * queue and ends the session (no spinning), and a saturated call eventfd is counted, not waited on.
 */
class RingDescriptorFaultTest {

    private static final int RING = 16;
    private static final QueueMap MAP = new QueueMap(2);
    private static final PortConfig PORT = new PortConfig(1, "org.test.null", false, 0, 0, null, new EndpointSpec.Null());

    private static void await(BooleanSupplier c, String what) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(5); // polling interval of a condition wait
        }
    }

    private static QueueSetup setup(int q, RingDriver r, int kick, int call, GuestRam ram) {
        return new QueueSetup(q, RING, r.descSegment(), r.availSegment(), r.usedSegment(), 0, kick, call, false, ram.memory());
    }

    @Test
    void aKickDescriptorThatCannotBeDrainedStopsTheQueueAndEndsTheSession() throws Exception {
        List<String> ended = new CopyOnWriteArrayList<>();
        Fd[] pipe = Io.pipe();
        pipe[1].closeQuietly(); // hung up: always readable, read returns 0
        try (ConsoleDevice device = new ConsoleDevice(2, List.of(PORT));
             GuestRam ram = new GuestRam(1 << 20, 1);
             RingDriver ring = new RingDriver(ram, RING, false);
             Fd kick = pipe[0]) {
            device.bind(ended::add);
            device.setMemory(MemoryTable.unowned(ram.memory()));
            int q = MAP.transmitQueue(1);
            device.startQueue(q, setup(q, ring, kick.fd(), -1, ram));
            await(() -> !ended.isEmpty(), "the session to be ended");
            assertTrue(ended.get(0).contains("kick"), ended.get(0));
            assertEquals(1, device.dataPlane().counters().kickFailures());
            assertEquals(0, device.stopQueue(q), "the queue was already stopped by the data plane");
            Thread.sleep(100);
            assertEquals(1, device.dataPlane().counters().kickFailures(), "stopped once, not spinning");
        }
    }

    @Test
    void aSaturatedCallEventfdIsCountedNotWaitedOn() throws Exception {
        try (ConsoleDevice device = new ConsoleDevice(2, List.of(PORT));
             GuestRam ram = new GuestRam(1 << 20, 1);
             RingDriver ring = new RingDriver(ram, RING, false);
             Fd kick = EventFd.create(0, EventFd.EFD_NONBLOCK);
             Fd call = EventFd.create(0, EventFd.EFD_NONBLOCK)) {
            assertEquals(8, EventFd.write(call.fd(), 0xffff_ffff_ffff_fffeL));
            device.setMemory(MemoryTable.unowned(ram.memory()));
            int q = MAP.transmitQueue(1);
            device.startQueue(q, setup(q, ring, kick.fd(), call.fd(), ram));
            for (int i = 0; i < 4; i++) {
                ring.addOutBuffer(new byte[] {1, 2, 3});
            }
            EventFd.signal(kick.fd());
            await(() -> device.dataPlane().counters().callsSaturated() > 0, "a saturated interrupt to be counted");
            assertEquals(-Errno.EAGAIN, EventFd.signal(call.fd()), "the counter is still at its maximum");
        }
    }
}
