package io.vportd.vring;

import io.vportd.vring.testing.HostView;
import io.vportd.vring.testing.RingDriver;
import io.vportd.vring.testing.RingDriver.Buffer;
import io.vportd.vring.testing.RingDriver.Used;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Random chain shapes (direct and indirect, zero-length pieces, buffers straddling region
 * boundaries, 16-bit index wrap), consumed by the device through random mixes of the copy
 * helpers and partial iovec transfers. Property: every byte offered is seen exactly once and in
 * order, and only chains the model says are bad are refused.
 */
class ChainPropertyTest {

    private static final int SEEDS = 300;
    private static final long REGION = 32 << 10;

    /** One shape the driver offered: where its buffers are and whether the device must refuse it. */
    record Offered(int head, Buffer[] buffers, boolean tooManySegments) {
    }

    private static int pieces(Buffer b) {
        if (b.length() == 0) {
            return 0;
        }
        long first = (b.gpa() - RingDriver.GPA_BASE) / REGION;
        long last = (b.gpa() + b.length() - 1 - RingDriver.GPA_BASE) / REGION;
        return (int) (last - first + 1);
    }

    private static Buffer[] randomShape(Random rnd, RingDriver d, int maxDescs) {
        int n = 1 + rnd.nextInt(maxDescs);
        Buffer[] bs = new Buffer[n];
        for (int i = 0; i < n; i++) {
            int len = rnd.nextInt(8) == 0 ? 0 : 1 + rnd.nextInt(rnd.nextBoolean() ? 64 : 3000);
            bs[i] = d.allocate(len, 1);
        }
        return bs;
    }

    @Test
    void transmitBytesAreSeenOnceInOrder() {
        for (int seed = 0; seed < SEEDS; seed++) {
            runTransmit(seed);
        }
    }

    @Test
    void receiveBytesAreSeenOnceInOrder() {
        for (int seed = 0; seed < SEEDS; seed++) {
            runReceive(seed);
        }
    }

    private static RingDriver newDriver(Random rnd) {
        int size = 1 << rnd.nextInt(7);
        int regions = 1 + rnd.nextInt(4);
        RingDriver d = new RingDriver(size, rnd.nextBoolean(), REGION * regions, regions);
        d.startAt(rnd.nextInt(65536), rnd.nextInt(65536));
        return d;
    }

    private static void runTransmit(int seed) {
        Random rnd = new Random(seed);
        try (RingDriver d = newDriver(rnd)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            String where = "seed " + seed + " " + q;
            ByteArrayOutputStream offered = new ByteArrayOutputStream();
            ByteArrayOutputStream seen = new ByteArrayOutputStream();
            ArrayDeque<Offered> inFlight = new ArrayDeque<>();
            long goodChains = 0;
            long badChains = 0;
            try (Chain c = q.newChain()) {
                boolean memoryLeft = true;
                while (memoryLeft || !inFlight.isEmpty()) {
                    // Driver: offer a few chains while descriptors and memory last.
                    int offers = rnd.nextInt(4);
                    for (int k = 0; k < offers && memoryLeft; k++) {
                        if (d.bytesFree() < 6 * 3000 + 4096) {
                            memoryLeft = false;
                            break;
                        }
                        boolean indirect = rnd.nextInt(4) == 0;
                        int free = d.freeDescriptors();
                        if (free == 0) {
                            break;
                        }
                        Buffer[] bs = randomShape(rnd, d, indirect ? 6 : Math.min(free, 6));
                        int segs = 0;
                        for (Buffer b : bs) {
                            byte[] data = new byte[b.length()];
                            rnd.nextBytes(data);
                            d.write(b.gpa(), data);
                            segs += pieces(b);
                        }
                        boolean tooMany = segs > d.size();
                        if (!tooMany) {
                            for (Buffer b : bs) {
                                offered.writeBytes(d.read(b.gpa(), b.length()));
                            }
                        }
                        int head = indirect ? d.addIndirectChain(bs, new Buffer[0]) : d.addChain(bs, new Buffer[0]);
                        inFlight.add(new Offered(head, bs, tooMany));
                    }
                    // Device: pop a few chains and read them.
                    int pops = 1 + rnd.nextInt(4);
                    for (int k = 0; k < pops; k++) {
                        int r = q.pop(c);
                        if (r == SplitQueue.EMPTY) {
                            assertTrue(inFlight.isEmpty(), where + ": EMPTY with chains outstanding");
                            break;
                        }
                        Offered o = inFlight.poll();
                        assertTrue(o != null, where + ": popped more than offered");
                        if (o.tooManySegments()) {
                            assertEquals(SplitQueue.BAD_CHAIN, r, where);
                            assertEquals(ChainError.TOO_MANY_SEGMENTS, q.lastError(), where);
                            badChains++;
                            continue;
                        }
                        assertEquals(SplitQueue.POPPED, r, where);
                        assertEquals(o.head(), c.head(), where);
                        long total = Arrays.stream(o.buffers()).mapToLong(Buffer::length).sum();
                        assertEquals(total, c.totalLength(), where);
                        seen.writeBytes(readChain(rnd, d.memory(), c));
                        q.pushUsed(c.head(), 0);
                        goodChains++;
                    }
                    if (rnd.nextBoolean() || inFlight.isEmpty()) {
                        q.publishUsed();
                        Used u;
                        while ((u = d.pollUsed()) != null) {
                            assertEquals(0, u.length(), where);
                        }
                    }
                    if (!memoryLeft && inFlight.isEmpty()) {
                        break;
                    }
                }
                q.publishUsed();
                d.drainUsed();
            }
            assertArrayEquals(offered.toByteArray(), seen.toByteArray(), where);
            assertEquals(goodChains, q.stats().chains(), where);
            assertEquals(badChains, q.stats().badChains(), where);
            assertEquals(offered.size(), q.stats().chainBytes(), where);
            assertEquals(d.size(), d.freeDescriptors(), where + ": every descriptor came back");
        }
    }

    /** Reads the chain's bytes by a random mix of copyOut and simulated partial writev through the iovecs. */
    private static byte[] readChain(Random rnd, GuestMemory m, Chain c) {
        int total = (int) c.totalLength();
        byte[] out = new byte[total];
        if (rnd.nextBoolean()) {
            int at = 0;
            while (at < total) {
                int n = 1 + rnd.nextInt(total - at);
                assertEquals(n, c.copyOut(at, out, at, n));
                at += n;
            }
            assertEquals(0, c.copyOut(total, new byte[1], 0, 1));
            return out;
        }
        int at = 0;
        while (c.remaining() > 0) {
            int n = 1 + rnd.nextInt((int) c.remaining());
            int got = readIovecs(m, c, out, at, n);
            assertEquals(n, got);
            at += n;
            assertEquals(total - at, c.advance(n));
        }
        assertEquals(0, c.iovCount());
        return out;
    }

    /** What writev would do: take up to n bytes from the remaining iovecs (native memory). */
    static int readIovecs(GuestMemory m, Chain c, byte[] out, int at, int n) {
        MemorySegment iov = c.iovecs();
        int done = 0;
        for (int j = 0; j < c.iovCount() && done < n; j++) {
            long base = iov.get(ValueLayout.JAVA_LONG, 16L * j);
            long len = iov.get(ValueLayout.JAVA_LONG, 16L * j + 8);
            int take = (int) Math.min(len, n - done);
            MemorySegment.copy(HostView.of(m, base, take), ValueLayout.JAVA_BYTE, 0, out, at + done, take);
            done += take;
        }
        return done;
    }

    /** What readv would do: put up to n bytes into the remaining iovecs (native memory). */
    static int writeIovecs(GuestMemory m, Chain c, byte[] src, int at, int n) {
        MemorySegment iov = c.iovecs();
        int done = 0;
        for (int j = 0; j < c.iovCount() && done < n; j++) {
            long base = iov.get(ValueLayout.JAVA_LONG, 16L * j);
            long len = iov.get(ValueLayout.JAVA_LONG, 16L * j + 8);
            int take = (int) Math.min(len, n - done);
            MemorySegment.copy(src, at + done, HostView.of(m, base, take), ValueLayout.JAVA_BYTE, 0, take);
            done += take;
        }
        return done;
    }

    private static void runReceive(int seed) {
        Random rnd = new Random(seed);
        try (RingDriver d = newDriver(rnd)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_WRITES);
            String where = "seed " + seed + " " + q;
            byte[] stream = new byte[256 << 10];
            rnd.nextBytes(stream);
            int produced = 0;
            ByteArrayOutputStream received = new ByteArrayOutputStream();
            ArrayDeque<Offered> inFlight = new ArrayDeque<>();
            try (Chain c = q.newChain()) {
                boolean memoryLeft = true;
                while (true) {
                    int offers = rnd.nextInt(4);
                    for (int k = 0; k < offers && memoryLeft; k++) {
                        if (d.bytesFree() < 6 * 3000 + 4096) {
                            memoryLeft = false;
                            break;
                        }
                        boolean indirect = rnd.nextInt(4) == 0;
                        int free = d.freeDescriptors();
                        if (free == 0) {
                            break;
                        }
                        Buffer[] bs = randomShape(rnd, d, indirect ? 6 : Math.min(free, 6));
                        int segs = 0;
                        for (Buffer b : bs) {
                            segs += pieces(b);
                        }
                        int head = indirect ? d.addIndirectChain(new Buffer[0], bs) : d.addChain(new Buffer[0], bs);
                        inFlight.add(new Offered(head, bs, segs > d.size()));
                    }
                    int pops = 1 + rnd.nextInt(4);
                    for (int k = 0; k < pops; k++) {
                        int r = q.pop(c);
                        if (r == SplitQueue.EMPTY) {
                            assertTrue(inFlight.isEmpty(), where + ": EMPTY with chains outstanding");
                            break;
                        }
                        Offered o = inFlight.poll();
                        assertTrue(o != null, where);
                        if (o.tooManySegments()) {
                            assertEquals(SplitQueue.BAD_CHAIN, r, where);
                            continue;
                        }
                        assertEquals(SplitQueue.POPPED, r, where);
                        assertEquals(o.head(), c.head(), where);
                        int room = (int) c.totalLength();
                        int fill = rnd.nextInt(4) == 0 ? room : rnd.nextInt(room + 1);
                        fill = Math.min(fill, stream.length - produced);
                        writeChain(rnd, d.memory(), c, stream, produced, fill);
                        produced += fill;
                        q.pushUsed(c.head(), fill);
                    }
                    if (rnd.nextBoolean() || inFlight.isEmpty()) {
                        q.publishUsed();
                        Used u;
                        while ((u = d.pollUsed()) != null) {
                            received.writeBytes(u.data());
                        }
                    }
                    if (!memoryLeft && inFlight.isEmpty()) {
                        break;
                    }
                }
                q.publishUsed();
                for (Used u : d.drainUsed()) {
                    received.writeBytes(u.data());
                }
            }
            assertArrayEquals(Arrays.copyOf(stream, produced), received.toByteArray(), where);
            assertEquals(produced, q.stats().usedBytes(), where);
            assertEquals(d.size(), d.freeDescriptors(), where);
        }
    }

    private static void writeChain(Random rnd, GuestMemory m, Chain c, byte[] src, int from, int fill) {
        if (rnd.nextBoolean()) {
            int at = 0;
            while (at < fill) {
                int n = 1 + rnd.nextInt(fill - at);
                assertEquals(n, c.copyIn(at, src, from + at, n));
                at += n;
            }
            return;
        }
        int at = 0;
        while (at < fill) {
            int n = 1 + rnd.nextInt(fill - at);
            assertEquals(n, writeIovecs(m, c, src, from + at, n));
            at += n;
            c.advance(n);
        }
        assertEquals(fill, c.transferred());
    }
}
