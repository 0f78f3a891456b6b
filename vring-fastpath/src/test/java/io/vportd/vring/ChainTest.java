package io.vportd.vring;

import io.vportd.vring.testing.RingDriver;
import io.vportd.vring.testing.RingDriver.Buffer;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The iovec cursor over partial readv/writev results, and the copy helpers' edges. */
class ChainTest {

    private static long iovBase(Chain c, int j) {
        return c.iovecs().get(ValueLayout.JAVA_LONG, 16L * j);
    }

    private static long iovLen(Chain c, int j) {
        return c.iovecs().get(ValueLayout.JAVA_LONG, 16L * j + 8);
    }

    /** Pops a readable chain of buffers of 10, 20 and 30 bytes. */
    private static void withChain(java.util.function.BiConsumer<RingDriver, Chain> body) {
        try (RingDriver d = new RingDriver(4, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            d.addChain(new Buffer[] {d.allocate(10), d.allocate(20), d.allocate(30)}, new Buffer[0]);
            try (Chain c = q.newChain()) {
                assertEquals(SplitQueue.POPPED, q.pop(c));
                body.accept(d, c);
            }
        }
    }

    @Test
    void iovecsMirrorTheSegments() {
        withChain((d, c) -> {
            assertEquals(3, c.iovCount());
            assertEquals(60, c.remaining());
            for (int i = 0; i < 3; i++) {
                assertEquals(c.hostAddress(i), iovBase(c, i));
                assertEquals(c.length(i), iovLen(c, i));
            }
        });
    }

    @Test
    void advanceWithinTheFirstIovecShortensItInPlace() {
        withChain((d, c) -> {
            long first = c.iovAddress();
            assertEquals(55, c.advance(5));
            assertEquals(first, c.iovAddress());
            assertEquals(3, c.iovCount());
            assertEquals(c.hostAddress(0) + 5, iovBase(c, 0));
            assertEquals(5, iovLen(c, 0));
            assertEquals(5, c.transferred());
        });
    }

    @Test
    void advanceExactlyToAnIovecBoundarySkipsIt() {
        withChain((d, c) -> {
            long first = c.iovAddress();
            assertEquals(50, c.advance(10));
            assertEquals(first + 16, c.iovAddress());
            assertEquals(2, c.iovCount());
            assertEquals(c.hostAddress(1), iovBase(c, 0));
            assertEquals(20, iovLen(c, 0));
        });
    }

    @Test
    void advanceAcrossSeveralIovecs() {
        withChain((d, c) -> {
            c.advance(3);
            assertEquals(22, c.advance(35)); // 7 left of the first, all 20 of the second, 8 of the third
            assertEquals(1, c.iovCount());
            assertEquals(c.hostAddress(2) + 8, iovBase(c, 0));
            assertEquals(22, iovLen(c, 0));
            assertEquals(0, c.advance(22));
            assertEquals(0, c.iovCount());
            assertEquals(0, c.advance(0));
        });
    }

    @Test
    void advanceRejectsCallerBugsAndRewindRestores() {
        withChain((d, c) -> {
            assertThrows(IllegalArgumentException.class, () -> c.advance(61));
            assertThrows(IllegalArgumentException.class, () -> c.advance(-1));
            c.advance(15);
            c.rewind();
            assertEquals(3, c.iovCount());
            assertEquals(60, c.remaining());
            assertEquals(c.hostAddress(0), iovBase(c, 0));
            assertEquals(10, iovLen(c, 0));
        });
    }

    @Test
    void nextPopResetsTheCursor() {
        try (RingDriver d = new RingDriver(4, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            d.addOutBuffer(new byte[7]);
            d.addOutChain(new byte[2], new byte[3]);
            try (Chain c = q.newChain()) {
                q.pop(c);
                c.advance(4);
                q.pop(c);
                assertEquals(2, c.iovCount());
                assertEquals(5, c.remaining());
                assertEquals(c.hostAddress(0), iovBase(c, 0));
                assertEquals(2, iovLen(c, 0));
            }
        }
    }

    @Test
    void copyHelpersCheckTheirArguments() {
        withChain((d, c) -> {
            byte[] b = new byte[4];
            assertThrows(IndexOutOfBoundsException.class, () -> c.copyOut(0, b, 2, 3));
            assertThrows(IllegalArgumentException.class, () -> c.copyOut(-1, b, 0, 1));
            assertEquals(0, c.copyOut(1000, b, 0, 4));
            assertThrows(IndexOutOfBoundsException.class, () -> c.hostAddress(3));
        });
    }

    @Test
    void capacityIsChecked() {
        assertThrows(IllegalArgumentException.class, () -> new Chain(0));
        try (Chain c = new Chain(1)) {
            assertEquals(1, c.capacity());
            assertEquals(-1, c.head());
        }
    }
}
