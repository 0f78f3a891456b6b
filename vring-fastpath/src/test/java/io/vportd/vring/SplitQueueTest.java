package io.vportd.vring;

import io.vportd.vring.testing.GuestRam;
import io.vportd.vring.testing.HostView;
import io.vportd.vring.testing.RingDriver;
import io.vportd.vring.testing.RingDriver.Buffer;
import io.vportd.vring.testing.RingDriver.Used;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SplitQueueTest {

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    @Test
    void emptyRingPopsNothing() {
        try (RingDriver d = new RingDriver(8, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            try (Chain c = q.newChain()) {
                assertFalse(q.hasAvailable());
                assertEquals(SplitQueue.EMPTY, q.pop(c));
                assertFalse(q.publishUsed(), "nothing pushed, nothing to signal");
            }
        }
    }

    @Test
    void transmitChainIsTranslatedAndReturned() {
        try (RingDriver d = new RingDriver(8, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            int head = d.addOutChain(ascii("hello "), ascii("world"));
            try (Chain c = q.newChain()) {
                assertTrue(q.hasAvailable());
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(head, c.head());
                assertEquals(2, c.segmentCount());
                assertEquals(11, c.totalLength());
                assertEquals(6, c.length(0));
                assertFalse(c.isWritable());
                // The host address is the mapping's, not the guest physical or user address.
                MemorySegment view = HostView.of(d.memory(), c.hostAddress(1), 5);
                assertEquals('w', view.get(ValueLayout.JAVA_BYTE, 0));
                byte[] out = new byte[11];
                assertEquals(11, c.copyOut(0, out, 0, 11));
                assertArrayEquals(ascii("hello world"), out);
                byte[] mid = new byte[4];
                assertEquals(4, c.copyOut(4, mid, 0, 4));
                assertArrayEquals(ascii("o wo"), mid);
                assertEquals(0, c.copyOut(11, mid, 0, 4));
                assertThrows(IllegalStateException.class, () -> c.copyIn(new byte[1], 0, 1));

                assertEquals(SplitQueue.EMPTY, q.pop(c));
                q.pushUsed(head, 0);
                assertEquals(0, d.pendingUsed(), "not visible before publish");
                assertTrue(q.publishUsed());
                List<Used> used = d.drainUsed();
                assertEquals(1, used.size());
                assertEquals(head, used.get(0).id());
                assertEquals(0, used.get(0).length());
                assertEquals(1, q.stats().chains());
                assertEquals(11, q.stats().chainBytes());
                assertEquals(1, q.stats().interrupts());
                assertEquals(0, q.stats().badChains());
            }
        }
    }

    @Test
    void receiveChainTakesCopyIn() {
        try (RingDriver d = new RingDriver(4, true)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_WRITES);
            Buffer a = d.allocate(3);
            Buffer b = d.allocate(10);
            int head = d.addChain(new Buffer[0], new Buffer[] {a, b});
            try (Chain c = q.newChain()) {
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertTrue(c.isWritable());
                assertEquals(13, c.totalLength());
                assertEquals(8, c.copyIn(ascii("PORT_ADD"), 0, 8));
                assertEquals(5, c.copyIn(8, ascii("xyzzy!!"), 0, 7), "clipped at the chain end");
                q.pushUsed(head, 13);
                q.publishUsed();
                Used u = d.pollUsed();
                assertEquals(head, u.id());
                assertEquals(13, u.length());
                assertArrayEquals(ascii("PORT_ADDxyzzy"), u.data());
                assertEquals(13, q.stats().usedBytes());
            }
        }
    }

    @Test
    void indirectChainIsFollowed() {
        try (RingDriver d = new RingDriver(4, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            Buffer a = d.allocate(2);
            Buffer b = d.allocate(3);
            d.write(a.gpa(), ascii("ab"));
            d.write(b.gpa(), ascii("cde"));
            int head = d.addIndirectChain(new Buffer[] {a, b, a}, new Buffer[0]);
            try (Chain c = q.newChain()) {
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(head, c.head());
                assertEquals(3, c.segmentCount());
                byte[] out = new byte[7];
                c.copyOut(0, out, 0, 7);
                assertArrayEquals(ascii("abcdeab"), out);
            }
        }
    }

    @Test
    void bufferSpanningTwoRegionsBecomesTwoSegments() {
        try (RingDriver d = new RingDriver(4, false, 8L << 20, 2)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            Buffer span = d.bufferAtRegionEnd(0, 10, 4); // 6 bytes in region 0, 4 in region 1
            d.write(span.gpa(), ascii("0123456789"));
            d.addChain(new Buffer[] {span}, new Buffer[0]);
            try (Chain c = q.newChain()) {
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(2, c.segmentCount());
                assertEquals(6, c.length(0));
                assertEquals(4, c.length(1));
                assertEquals(d.memory().region(1).mapping().address(), c.hostAddress(1));
                byte[] out = new byte[10];
                c.copyOut(0, out, 0, 10);
                assertArrayEquals(ascii("0123456789"), out);
            }
        }
    }

    @Test
    void queuesOfOneDeviceShareGuestRam() {
        try (GuestRam ram = new GuestRam(8L << 20, 2)) {
            RingDriver rx = new RingDriver(ram, 8, true);
            RingDriver tx = new RingDriver(ram, 64, true);
            SplitQueue qrx = rx.newDeviceQueue(0, Direction.DEVICE_WRITES, new QueueStats());
            SplitQueue qtx = tx.newDeviceQueue(1, Direction.DEVICE_READS, new QueueStats());
            assertEquals(1, qtx.index());
            assertTrue(rx.descGpa() != tx.descGpa());
            assertEquals(ram.memory().userToGuest(tx.usedUserAddr()), tx.usedGpa());
            int out = tx.addOutBuffer(ascii("ping"));
            int in = rx.addInBuffer(16);
            try (Chain c = qtx.newChain(); Chain r = qrx.newChain()) {
                assertEquals(SplitQueue.POPPED, qtx.pop(c));
                byte[] msg = new byte[4];
                c.copyOut(0, msg, 0, 4);
                assertEquals(SplitQueue.POPPED, qrx.pop(r));
                assertEquals(4, r.copyIn(msg, 0, 4));
                qtx.pushUsed(out, 0);
                qrx.pushUsed(in, 4);
                qtx.publishUsed();
                qrx.publishUsed();
                assertEquals(out, tx.pollUsed().id());
                assertArrayEquals(ascii("ping"), rx.pollUsed().data());
                assertEquals(SplitQueue.EMPTY, qtx.pop(c));
                assertEquals(SplitQueue.EMPTY, qrx.pop(r));
            }
        }
    }

    @Test
    void indicesWrapAt16Bits() {
        try (RingDriver d = new RingDriver(4, true)) {
            d.startAt(65533, 65534);
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            assertEquals(65533, q.nextAvail());
            assertEquals(65534, q.usedIndex());
            try (Chain c = q.newChain()) {
                for (int round = 0; round < 5; round++) {
                    int head = d.addOutBuffer(new byte[] {(byte) round});
                    assertEquals(SplitQueue.POPPED, q.pop(c), "round " + round);
                    byte[] one = new byte[1];
                    c.copyOut(0, one, 0, 1);
                    assertEquals(round, one[0]);
                    q.pushUsed(head, 0);
                    q.publishUsed();
                    assertEquals(head, d.pollUsed().id());
                    assertTrue(q.enableNotifications() == false);
                }
                assertEquals((65533 + 5) & 0xFFFF, q.nextAvail());
                assertEquals((65534 + 5) & 0xFFFF, q.usedIndex());
            }
        }
    }

    @Test
    void setNextAvailSkipsConsumedEntries() {
        try (RingDriver d = new RingDriver(8, false)) {
            d.addOutBuffer(ascii("old"));
            int fresh = d.addOutBuffer(ascii("new"));
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            q.setNextAvail(1); // as after SET_VRING_BASE 1
            try (Chain c = q.newChain()) {
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(fresh, c.head());
                assertEquals(2, q.nextAvail());
            }
        }
    }

    @Test
    void unpopHandsTheSameChainOutAgain() {
        try (RingDriver d = new RingDriver(8, true)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_WRITES);
            int first = d.addInBuffer(10);
            int second = d.addInBuffer(20);
            try (Chain c = q.newChain()) {
                assertThrows(IllegalStateException.class, q::unpop);
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(first, c.head());
                q.unpop();
                assertThrows(IllegalStateException.class, q::unpop, "only once");
                assertEquals(0, q.nextAvail());
                assertEquals(0, q.stats().chains());
                assertTrue(q.hasAvailable());
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(first, c.head());
                q.pushUsed(first, 0);
                assertThrows(IllegalStateException.class, q::unpop, "not after pushUsed");
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(second, c.head());
                assertEquals(2, q.stats().chains());
                assertEquals(30, q.stats().chainBytes());
            }
        }
    }

    @Test
    void pushUsedRejectsCallerBugs() {
        try (RingDriver d = new RingDriver(4, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            assertThrows(IllegalArgumentException.class, () -> q.pushUsed(4, 0));
            assertThrows(IllegalArgumentException.class, () -> q.pushUsed(-1, 0));
            assertThrows(IllegalArgumentException.class, () -> q.pushUsed(0, -1));
        }
    }
}
