package io.vportd.vring;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.sys.UnixSockets;
import io.vportd.vring.testing.RingDriver;
import io.vportd.vring.testing.RingDriver.Buffer;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The chain's iovec cursor against real partial writev/readv on non-blocking sockets. */
class ChainWritevTest {

    @Test
    void partialWritevsDeliverEveryByteOnceInOrder() throws Exception {
        Random rnd = new Random(7);
        try (RingDriver d = new RingDriver(16, false, 8L << 20, 2);
             Arena arena = Arena.ofConfined()) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            Fd[] pair = UnixSockets.pair();
            try (Fd a = pair[0]; Fd b = pair[1]; Chain c = q.newChain()) {
                Io.setNonBlocking(a.fd(), true);
                Io.setNonBlocking(b.fd(), true);
                // ~1.5 MiB in 12 pieces, one of them straddling the region boundary: far more than
                // a socket buffer holds, so writev returns short counts and EAGAIN.
                Buffer[] bs = new Buffer[12];
                ByteArrayOutputStream offered = new ByteArrayOutputStream();
                for (int i = 0; i < bs.length; i++) {
                    bs[i] = i == 6 ? d.bufferAtRegionEnd(0, 100_000, 30_000) : d.allocate(50_000 + rnd.nextInt(150_000), 1);
                    byte[] data = new byte[bs[i].length()];
                    rnd.nextBytes(data);
                    d.write(bs[i].gpa(), data);
                    offered.writeBytes(data);
                }
                int head = d.addChain(bs, new Buffer[0]);
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(13, c.segmentCount());
                MemorySegment buf = arena.allocate(1 << 16);
                ByteArrayOutputStream seen = new ByteArrayOutputStream();
                int shortWrites = 0;
                while (c.remaining() > 0) {
                    long n = Io.writev(a.fd(), c.iovAddress(), c.iovCount());
                    if (n == -Errno.EAGAIN) {
                        n = 0;
                    }
                    assertTrue(n >= 0, "writev " + n);
                    if (n < c.remaining()) {
                        shortWrites++;
                    }
                    c.advance(n);
                    long r;
                    while ((r = Io.read(b.fd(), buf.address(), buf.byteSize())) > 0) {
                        seen.writeBytes(buf.asSlice(0, r).toArray(ValueLayout.JAVA_BYTE));
                    }
                }
                long r;
                while ((r = Io.read(b.fd(), buf.address(), buf.byteSize())) > 0) {
                    seen.writeBytes(buf.asSlice(0, r).toArray(ValueLayout.JAVA_BYTE));
                }
                assertTrue(shortWrites > 1, "the test must see partial writes, saw " + shortWrites);
                assertArrayEquals(offered.toByteArray(), seen.toByteArray());
                q.pushUsed(head, 0);
                q.publishUsed();
                assertEquals(head, d.pollUsed().id());
            }
        }
    }

    @Test
    void partialReadvsFillTheReceiveChainInOrder() throws Exception {
        Random rnd = new Random(11);
        try (RingDriver d = new RingDriver(8, true)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_WRITES);
            Fd[] pair = UnixSockets.pair();
            try (Fd a = pair[0]; Fd b = pair[1]; Chain c = q.newChain();
                 Arena arena = Arena.ofConfined()) {
                Io.setNonBlocking(b.fd(), true);
                int head = d.addChain(new Buffer[0], new Buffer[] {d.allocate(100), d.allocate(1), d.allocate(4000)});
                assertEquals(SplitQueue.POPPED, q.pop(c));
                byte[] data = new byte[4101];
                rnd.nextBytes(data);
                MemorySegment src = arena.allocate(data.length);
                MemorySegment.copy(data, 0, src, ValueLayout.JAVA_BYTE, 0, data.length);
                int sent = 0;
                int[] steps = {37, 64, 1, 999, 3000};
                for (int step : steps) {
                    assertEquals(step, Io.write(a.fd(), src.address() + sent, step));
                    sent += step;
                    long n = Io.readv(b.fd(), c.iovAddress(), c.iovCount());
                    assertEquals(step, n, "a readv takes what one write sent");
                    c.advance(n);
                }
                assertEquals(0, c.remaining());
                assertEquals(0, c.iovCount());
                assertEquals(-Errno.EAGAIN, Io.read(b.fd(), src.address(), 1), "nothing more was sent");
                q.pushUsed(head, (int) c.transferred());
                q.publishUsed();
                RingDriver.Used u = d.pollUsed();
                assertEquals(4101, u.length());
                assertArrayEquals(data, u.data());
            }
        }
    }
}
