package io.vportd.vring;

import io.vportd.vring.testing.RingDriver;
import org.junit.jupiter.api.Test;

import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Kick and interrupt suppression, with and without VIRTIO_F_RING_EVENT_IDX. */
class NotificationTest {

    private static void drain(SplitQueue q, Chain c) {
        while (q.pop(c) != SplitQueue.EMPTY) {
            q.pushUsed(c.head(), 0);
        }
    }

    // ---------------------------------------------------------------- kicks (driver -> device)

    @Test
    void withoutEventIdxNoNotifyFlagSuppressesKicks() {
        try (RingDriver d = new RingDriver(8, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            d.addOutBuffer(new byte[] {1});
            assertTrue(d.kickNeeded(), "device has not suppressed kicks yet");
            q.disableNotifications();
            assertEquals(1, d.usedFlags());
            d.addOutBuffer(new byte[] {2});
            assertFalse(d.kickNeeded());
            try (Chain c = q.newChain()) {
                drain(q, c);
                assertFalse(q.enableNotifications(), "nothing arrived meanwhile");
                assertEquals(0, d.usedFlags());
                d.addOutBuffer(new byte[] {3});
                assertTrue(d.kickNeeded());
            }
        }
    }

    @Test
    void withEventIdxAvailEventSuppressesKicks() {
        try (RingDriver d = new RingDriver(8, true)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            try (Chain c = q.newChain()) {
                assertFalse(q.enableNotifications());
                assertEquals(0, d.availEvent());
                d.addOutBuffer(new byte[] {1});
                assertTrue(d.kickNeeded(), "avail idx crossed avail_event 0");
                q.disableNotifications();
                assertEquals(0, d.usedFlags(), "EVENT_IDX does not use the flag");
                d.addOutBuffer(new byte[] {2});
                assertFalse(d.kickNeeded(), "avail_event 0 already passed: no second kick");
                d.addOutBuffer(new byte[] {3});
                d.addOutBuffer(new byte[] {4});
                assertFalse(d.kickNeeded());
                drain(q, c);
                assertEquals(4, q.nextAvail());
                assertFalse(q.enableNotifications());
                assertEquals(4, d.availEvent());
                d.addOutBuffer(new byte[] {5});
                d.addOutBuffer(new byte[] {6});
                assertTrue(d.kickNeeded(), "a batch crossing avail_event kicks once");
                assertEquals(0, q.stats().badChains());
            }
        }
    }

    @Test
    void reenableRecheckCatchesBufferAddedWhileDisabledWithoutEventIdx() {
        noLostWakeup(false);
    }

    @Test
    void reenableRecheckCatchesBufferAddedWhileDisabledWithEventIdx() {
        noLostWakeup(true);
    }

    /** The interleaving that loses a wake-up unless the device re-checks after re-enabling. */
    private static void noLostWakeup(boolean eventIdx) {
        try (RingDriver d = new RingDriver(8, eventIdx)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            try (Chain c = q.newChain()) {
                q.enableNotifications();
                d.addOutBuffer(new byte[] {1});
                assertTrue(d.kickNeeded());
                // Device wakes up: disable, drain...
                q.disableNotifications();
                drain(q, c);
                // ...the driver adds a buffer after the drain but before the re-enable: no kick.
                int late = d.addOutBuffer(new byte[] {2});
                assertFalse(d.kickNeeded(), "suppressed, so the device gets no kick for it");
                // The re-check must report it, or it would sit there until the next kick.
                assertTrue(q.enableNotifications());
                assertEquals(1, q.stats().notifyRechecks());
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(late, c.head());
                q.pushUsed(late, 0);
                assertFalse(q.enableNotifications());
                d.addOutBuffer(new byte[] {3});
                assertTrue(d.kickNeeded(), "armed again");
            }
        }
    }

    // ---------------------------------------------------------------- interrupts (device -> driver)

    @Test
    void withoutEventIdxNoInterruptFlagSuppressesInterrupts() {
        try (RingDriver d = new RingDriver(8, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            try (Chain c = q.newChain()) {
                d.addOutBuffer(new byte[] {1});
                drain(q, c);
                assertTrue(q.publishUsed());
                assertFalse(q.publishUsed(), "nothing new since the last publish");
                d.disableInterrupts();
                d.addOutBuffer(new byte[] {2});
                drain(q, c);
                assertFalse(q.publishUsed());
                assertEquals(2, d.usedIdx(), "published even when not signalled");
                d.enableInterrupts();
                d.addOutBuffer(new byte[] {3});
                drain(q, c);
                assertTrue(q.publishUsed());
                assertEquals(2, q.stats().interrupts());
                assertEquals(1, q.stats().interruptsSuppressed());
            }
        }
    }

    @Test
    void withEventIdxInterruptOnlyWhenUsedEventIsCrossed() {
        try (RingDriver d = new RingDriver(16, true)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            try (Chain c = q.newChain()) {
                d.setUsedEvent(0);
                d.addOutBuffer(new byte[] {0});
                drain(q, c);
                assertTrue(q.publishUsed(), "used idx 0 -> 1 crosses used_event 0");
                d.addOutBuffer(new byte[] {1});
                drain(q, c);
                assertFalse(q.publishUsed(), "1 -> 2 does not cross 0");
                d.setUsedEvent(4);
                boolean[] signalled = new boolean[8];
                for (int i = 2; i < 8; i++) {
                    d.addOutBuffer(new byte[] {(byte) i});
                    drain(q, c);
                    signalled[i] = q.publishUsed();
                }
                // used idx goes i -> i+1; only 4 -> 5 crosses used_event 4.
                for (int i = 2; i < 8; i++) {
                    assertEquals(i == 4, signalled[i], "publish to " + (i + 1));
                }
                d.setUsedEvent(9);
                for (int i = 0; i < 5; i++) {
                    d.addOutBuffer(new byte[] {(byte) i});
                }
                drain(q, c);
                assertTrue(q.publishUsed(), "a batch 8 -> 13 crosses used_event 9");
                d.disableInterrupts();
                d.addOutBuffer(new byte[] {9});
                drain(q, c);
                assertFalse(q.publishUsed());
            }
        }
    }

    @Test
    void usedEventWrapsWith16BitIndices() {
        try (RingDriver d = new RingDriver(4, true)) {
            d.startAt(65534, 65534);
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            try (Chain c = q.newChain()) {
                d.setUsedEvent(65535);
                d.addOutBuffer(new byte[] {1});
                drain(q, c);
                assertFalse(q.publishUsed(), "65534 -> 65535 does not cross 65535");
                d.addOutBuffer(new byte[] {2});
                d.addOutBuffer(new byte[] {3});
                drain(q, c);
                assertTrue(q.publishUsed(), "65535 -> 1 crosses 65535");
            }
        }
    }

    // ---------------------------------------------------------------- real concurrency

    @Test
    void noWakeupLostUnderConcurrencyWithoutEventIdx() throws Exception {
        pingPong(false);
    }

    @Test
    void noWakeupLostUnderConcurrencyWithEventIdx() throws Exception {
        pingPong(true);
    }

    /**
     * Driver and device on two threads, each sleeping on a semaphore (the eventfd) until the other
     * signals. Both sides suppress notifications and rely on their re-check; a lost wake-up leaves
     * one side waiting with work pending, which the deadline turns into a failure.
     */
    private static void pingPong(boolean eventIdx) throws Exception {
        final int total = 50_000;
        try (RingDriver d = new RingDriver(8, eventIdx)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_WRITES);
            Semaphore kick = new Semaphore(0);
            Semaphore call = new Semaphore(0);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread device = new Thread(() -> {
                try (Chain c = q.newChain()) {
                    int done = 0;
                    byte[] one = new byte[1];
                    q.enableNotifications();
                    while (done < total) {
                        if (!kick.tryAcquire(10, TimeUnit.SECONDS)) {
                            throw new AssertionError("device: no kick, " + done + " done; lost wake-up");
                        }
                        do {
                            q.disableNotifications();
                            int r;
                            while ((r = q.pop(c)) != SplitQueue.EMPTY) {
                                if (r != SplitQueue.POPPED) {
                                    throw new AssertionError("bad chain " + q.lastError());
                                }
                                one[0] = (byte) done;
                                c.copyIn(one, 0, 1);
                                q.pushUsed(c.head(), 1);
                                done++;
                            }
                            if (q.publishUsed()) {
                                call.release();
                            }
                        } while (q.enableNotifications());
                    }
                } catch (Throwable t) {
                    failure.set(t);
                    call.release(1000);
                }
            }, "device");
            device.start();
            int added = 0;
            int received = 0;
            long[] gpas = new long[1];
            int[] lens = new int[1];
            RingDriver.Buffer[] bufs = new RingDriver.Buffer[8];
            for (int i = 0; i < 8; i++) {
                bufs[i] = d.allocate(1);
            }
            while (received < total) {
                // Add as many buffers as fit, kick if the device asks for it.
                boolean addedAny = false;
                while (added < total && d.freeDescriptors() > 0) {
                    gpas[0] = bufs[added & 7].gpa();
                    lens[0] = 1;
                    d.add(gpas, lens, 0, 1);
                    added++;
                    addedAny = true;
                }
                if (addedAny && d.kickNeeded()) {
                    kick.release();
                }
                // Reclaim; when nothing is there, arm interrupts, re-check, then sleep.
                d.disableInterrupts();
                RingDriver.Used u;
                int got = 0;
                while ((u = d.pollUsed()) != null) {
                    // The device's byte must be visible once its used entry is (release/acquire).
                    assertEquals(1, u.length());
                    assertEquals((byte) received, u.data()[0], "byte of chain " + received);
                    received++;
                    got++;
                }
                if (got == 0 && !d.enableInterrupts()) {
                    if (failure.get() != null) {
                        break;
                    }
                    if (!call.tryAcquire(10, TimeUnit.SECONDS)) {
                        fail("driver: no interrupt with " + received + " received; lost wake-up");
                    }
                }
            }
            device.join(TimeUnit.SECONDS.toMillis(10));
            if (failure.get() != null) {
                throw new AssertionError(failure.get());
            }
            assertEquals(total, received);
            assertEquals(total, q.stats().chains());
            assertTrue(q.stats().interruptsSuppressed() + q.stats().interrupts() > 0);
        }
    }
}
