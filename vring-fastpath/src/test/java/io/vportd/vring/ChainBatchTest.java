package io.vportd.vring;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.vportd.vring.testing.RingDriver;
import io.vportd.vring.testing.RingDriver.Buffer;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * What a device needs to move several chains with one readv/writev (issue 14): the ring slots a
 * chain occupies, its iovecs copied out without allocation, popping only good chains, and
 * handing popped chains back in order.
 */
class ChainBatchTest {

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    @Test
    void aChainOccupiesOneRingSlotPerDirectDescriptorAndOneForAnIndirectTable() {
        try (RingDriver d = new RingDriver(16, true)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            d.addOutChain(ascii("a"), ascii("bc"), ascii("def"));
            Buffer x = d.allocate(4);
            Buffer y = d.allocate(5);
            d.addIndirectChain(new Buffer[] {x, y}, new Buffer[0]);
            d.addOutBuffer(ascii("g"));
            try (Chain c = q.newChain()) {
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(3, c.ringSlots());
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(1, c.ringSlots(), "an indirect chain holds one slot of the ring, however long its table");
                assertEquals(2, c.segmentCount());
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(1, c.ringSlots());
            }
        }
    }

    @Test
    void iovecsAreCopiedFromTheCursorOn() {
        try (RingDriver d = new RingDriver(8, true); Arena a = Arena.ofConfined()) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            d.addOutChain(ascii("hello "), ascii("world"));
            try (Chain c = q.newChain()) {
                q.pop(c);
                c.advance(8); // into the second piece
                MemorySegment dst = a.allocate(16 * 4, 16);
                c.copyIovecsTo(dst, 1);
                assertEquals(c.hostAddress(1) + 2, dst.get(ValueLayout.JAVA_LONG, 16));
                assertEquals(3, dst.get(ValueLayout.JAVA_LONG, 24));
                assertThrows(IndexOutOfBoundsException.class, () -> c.copyIovecsTo(dst, 4));
            }
        }
    }

    @Test
    void popGoodLeavesABadChainInPlaceForPopToDealWith() {
        try (RingDriver d = new RingDriver(8, true)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            int good = d.addOutBuffer(ascii("ok"));
            d.publishHead(200); // head out of range
            try (Chain c = q.newChain()) {
                assertEquals(SplitQueue.POPPED, q.popGood(c));
                assertEquals(good, c.head());
                assertEquals(SplitQueue.EMPTY, q.popGood(c), "a bad chain is not taken by popGood");
                assertEquals(1, q.nextAvail());
                assertEquals(0, q.stats().badChains(), "nor counted");
                assertEquals(SplitQueue.BAD_CHAIN, q.pop(c), "pop takes it in its turn");
                assertEquals(2, q.nextAvail());
                assertEquals(SplitQueue.EMPTY, q.popGood(c));
            }
        }
    }

    @Test
    void chainsHandedBackArePoppedAgainInTheSameOrder() {
        try (RingDriver d = new RingDriver(8, true)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            int h1 = d.addOutBuffer(ascii("one"));
            int h2 = d.addOutBuffer(ascii("two!"));
            int h3 = d.addOutBuffer(ascii("three"));
            try (Chain c = q.newChain()) {
                q.pop(c);
                q.popGood(c);
                q.popGood(c);
                q.pushUsed(h1, 0); // the first was taken; the other two go back
                q.giveBack(2, 4 + 5);
                assertEquals(1, q.nextAvail());
                assertEquals(1, q.stats().chains());
                assertEquals(3, q.stats().chainBytes());
                int[] heads = new int[2];
                for (int i = 0; i < 2; i++) {
                    assertEquals(SplitQueue.POPPED, q.pop(c));
                    heads[i] = c.head();
                }
                assertArrayEquals(new int[] {h2, h3}, heads);
                assertEquals(SplitQueue.EMPTY, q.pop(c));
                assertThrows(IllegalArgumentException.class, () -> q.giveBack(9, 0));
            }
        }
    }
}
