package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.cli.PortSpecParser;
import io.vportd.console.control.PortConfig;
import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.testsupport.Await;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Devices sharing one {@link EventLoop} (issue 13): each gets its turns, a device that fails stops
 * alone while the others on its loop go on, and closing a device on a loop is not a failure.
 */
class EventLoopTest {

    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final PortConfig PORT = new PortConfig(1, "org.test.ticker", false, 0, 0, null, new EndpointSpec.Null());

    /** A null endpoint that counts its ticks, can be made slow, and throws an Error once armed. */
    private static final class Ticker extends io.vportd.console.endpoint.NullEndpoint {
        final AtomicInteger ticks = new AtomicInteger();
        final AtomicBoolean armed = new AtomicBoolean();
        final AtomicReference<String> tickThread = new AtomicReference<>();
        volatile long spinNanos;

        @Override
        public String describe() {
            return "ticker";
        }

        @Override
        public boolean wantsTicks() {
            return true;
        }

        @Override
        public void tick(long nanoTime) {
            tickThread.set(Thread.currentThread().getName());
            ticks.incrementAndGet();
            if (armed.get()) {
                throw new AssertionError("simulated defect on a shared event loop");
            }
            long until = System.nanoTime() + spinNanos;
            while (System.nanoTime() - until < 0) {
                Thread.onSpinWait(); // a device whose turns take long
            }
        }
    }

    private static ConsoleDevice device(Ticker t, EventLoop loop, String tag) throws Exception {
        return new ConsoleDevice(2, List.of(PORT), c -> t, new PortLogContext(tag, PortLogContext.DEFAULT.journalSocket()), loop);
    }

    @Test
    void devicesOnOneLoopRunOnItsThreadAndAFailingOneStopsAlone() throws Exception {
        List<String> tags = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (EventLoop loop = new EventLoop("vportd-loop-test", t -> {
            if (t != null) {
                tags.add(t);
            }
        })) {
            Ticker a = new Ticker();
            Ticker b = new Ticker();
            Ticker slow = new Ticker();
            try (ConsoleDevice da = device(a, loop, "a"); ConsoleDevice db = device(b, loop, "b");
                 ConsoleDevice ds = device(slow, loop, "slow")) {
                assertEquals(3, loop.attached());
                Await.until("every device ticks", WAIT, () -> a.ticks.get() > 2 && b.ticks.get() > 2 && slow.ticks.get() > 2);
                assertEquals("vportd-loop-test", b.tickThread.get(), "a device's data plane runs on its loop's thread");
                assertTrue(tags.contains("a") && tags.contains("b") && tags.contains("slow"), "turns are tagged: " + tags);

                // One device whose turns take 30 ms: the others still get theirs.
                slow.spinNanos = TimeUnit.MILLISECONDS.toNanos(30);
                int before = b.ticks.get();
                Await.until("device b to tick beside a slow device", WAIT, () -> b.ticks.get() >= before + 5);
                slow.spinNanos = 0;

                // One device fails: it alone stops, its owner is told, the others go on.
                CountDownLatch aStopped = new CountDownLatch(1);
                CountDownLatch bStopped = new CountDownLatch(1);
                da.dataPlane().onUnexpectedStop(aStopped::countDown);
                db.dataPlane().onUnexpectedStop(bStopped::countDown);
                a.armed.set(true);
                assertTrue(aStopped.await(10, TimeUnit.SECONDS), "the failed device's stop action ran");
                Await.until("the failed device to be detached", WAIT, () -> loop.attached() == 2);
                int bTicks = b.ticks.get();
                Await.until("device b to go on ticking", WAIT, () -> b.ticks.get() >= bTicks + 3);
                assertEquals(2, db.dataPlane().ports().size() + 1, "device b answers commands");
                assertEquals(1, bStopped.getCount(), "device b did not stop");

                // A device attached after the failure (it may take the failed one's token) gets its turns.
                Ticker c = new Ticker();
                try (ConsoleDevice dc = device(c, loop, "c")) {
                    Await.until("a device attached after the failure to tick", WAIT, () -> c.ticks.get() > 2);
                    assertEquals(1, dc.dataPlane().ports().size());
                }
            }
            assertEquals(0, loop.attached(), "closed devices leave the loop");
        }
    }

    /**
     * A frozen device (a hand-over under way) whose host client wrote and hung up meanwhile: the
     * loop sleeps until the thaw instead of turning the device over and over (its epoll set stays
     * ready, since a frozen device reads none of it), nothing is served while frozen, and what
     * came during the freeze is served after it.
     */
    @Test
    void aFrozenDeviceWithReadyDescriptorsDoesNotSpinItsLoop(@TempDir Path dir) throws Exception {
        Path sock = dir.resolve("agent.sock");
        try (EventLoop loop = new EventLoop("vportd-loop-test", null);
             ConsoleDevice d = new ConsoleDevice(8, List.of(PortSpecParser.parse("nr=1,name=agent,socket=" + sock)),
                     ConsoleDevice::endpointFor, new PortLogContext("frozen", PortLogContext.DEFAULT.journalSocket()), loop)) {
            SocketChannel client = SocketChannel.open(StandardProtocolFamily.UNIX);
            client.connect(UnixDomainSocketAddress.of(sock));
            Await.until("the host client to be connected", WAIT, () -> d.dataPlane().ports().getFirst().hostConnected());
            d.dataPlane().prepareHandover(1000);
            d.dataPlane().freezeForHandover();
            client.write(ByteBuffer.wrap(new byte[] {1, 2, 3})); // readable, and nobody reads while frozen
            client.close(); // a hang-up, which no frozen device serves
            Thread.sleep(50);
            long before = loop.wakeups();
            Thread.sleep(300);
            long during = loop.wakeups() - before;
            assertTrue(during < 20, "the loop woke " + during + " times in 300 ms for a frozen device with nothing to do");
            assertTrue(d.dataPlane().ports().getFirst().hostConnected(), "a frozen device served its host's hang-up");

            d.dataPlane().thaw();
            Await.until("the hang-up that came during the freeze to be served after it", WAIT,
                    () -> !d.dataPlane().ports().getFirst().hostConnected());
        }
    }

    /**
     * One busy device beside 63 idle ones on a loop: a wake-up for the busy one costs the loop
     * that device, not a walk of all 64 (the idle ones' timers are a second apart). Each command
     * to a device wakes its loop through the device's own eventfd.
     */
    @Test
    void aWakeUpForOneDeviceDoesNotWalkTheIdleOnes() throws Exception {
        PortConfig idlePort = new PortConfig(1, "org.test.idle", false, 0, 0, null, new EndpointSpec.Null());
        List<ConsoleDevice> devices = new java.util.ArrayList<>();
        try (EventLoop loop = new EventLoop("vportd-loop-test", null)) {
            try {
                Ticker busy = new Ticker();
                ConsoleDevice busyDevice = device(busy, loop, "busy");
                devices.add(busyDevice);
                for (int i = 0; i < 63; i++) {
                    devices.add(new ConsoleDevice(2, List.of(idlePort), ConsoleDevice::endpointFor,
                            new PortLogContext("idle" + i, PortLogContext.DEFAULT.journalSocket()), loop));
                }
                Await.until("all 64 devices on the loop", WAIT, () -> loop.attached() == 64);
                Thread.sleep(100); // past their first turns
                long wakeups0 = loop.wakeups();
                long visits0 = loop.visits();
                int ticks0 = busy.ticks.get();
                for (int i = 0; i < 300; i++) {
                    assertEquals(1, busyDevice.dataPlane().ports().size()); // a command: one wake-up, one turn
                }
                long wakeups = loop.wakeups() - wakeups0;
                long visits = loop.visits() - visits0;
                assertTrue(wakeups >= 150, "the commands woke the loop (some may share a wake-up): " + wakeups);
                // Every tick of the busy device (its timer) may bring a walk of all 64; nothing else should.
                long walksAllowed = 4 + busy.ticks.get() - ticks0;
                assertTrue(visits <= wakeups + 64 * walksAllowed,
                        visits + " data planes looked at over " + wakeups + " wake-ups for one device beside 63 idle ones");
                assertTrue(busy.ticks.get() > 0, "the busy device's timer still fires");
            } finally {
                for (ConsoleDevice d : devices) {
                    d.close();
                }
            }
        }
    }

    @Test
    void closingADeviceOnALoopIsNotAFailure() throws Exception {
        try (EventLoop loop = new EventLoop("vportd-loop-test", null)) {
            Ticker t = new Ticker();
            CountDownLatch stopped = new CountDownLatch(1);
            try (ConsoleDevice d = device(t, loop, "d")) {
                d.dataPlane().onUnexpectedStop(stopped::countDown);
                Await.until("a tick", WAIT, () -> t.ticks.get() > 0);
            }
            assertEquals(1, stopped.getCount(), "close() is an expected stop");
            assertEquals(0, loop.attached(), "the loop let go of the device before close returned (else close gives up "
                    + "after 5 s and leaves it attached)");
        }
    }
}
