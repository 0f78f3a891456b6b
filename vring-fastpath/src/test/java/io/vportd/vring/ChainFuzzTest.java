package io.vportd.vring;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vportd.vring.testing.RingDriver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The chain walker against a ring whose descriptor table, indirect tables and available ring are
 * written from fuzz bytes. Invariants: pop() returns one of its four codes and never throws;
 * every segment of a popped chain lies inside one guest memory region; the segment lengths add
 * up to the chain's total, which stays below 2^31 and within the chain's capacity; the chain
 * copies exactly what it holds; bad chains and a broken queue are counted exactly once each.
 * The coverage-guided counterpart of {@link GarbageRingTest}. In {@code mvn verify} the stored
 * inputs under {@code ChainFuzzTestInputs/walkFuzzedRing} are replayed; {@code fuzz/run} fuzzes.
 */
class ChainFuzzTest {

    private static long address(FuzzedDataProvider data, RingDriver d) {
        return switch (data.consumeInt(0, 4)) {
            case 0 -> data.consumeLong();
            case 1 -> d.memoryEnd() - data.consumeInt(0, 256);
            case 2 -> RingDriver.GPA_BASE - data.consumeInt(0, 64);
            case 3 -> RingDriver.USER_BASE + data.consumeInt(0, 4096);
            default -> RingDriver.GPA_BASE + data.consumeLong(0, d.memoryEnd() - RingDriver.GPA_BASE);
        };
    }

    private static int length(FuzzedDataProvider data) {
        return switch (data.consumeInt(0, 2)) {
            case 0 -> data.consumeInt();
            case 1 -> 16 * data.consumeInt(0, 9);
            default -> data.consumeInt(0, 5000);
        };
    }

    @FuzzTest(maxDuration = "30s")
    void walkFuzzedRing(FuzzedDataProvider data) {
        int size = 1 << data.consumeInt(0, 5);
        int regions = data.consumeInt(1, 3);
        boolean eventIdx = data.consumeBoolean();
        Direction dir = data.consumeBoolean() ? Direction.DEVICE_READS : Direction.DEVICE_WRITES;
        try (RingDriver d = new RingDriver(size, eventIdx, (64L << 10) * regions, regions)) {
            SplitQueue q = d.newDeviceQueue(dir);
            long[] tables = new long[2];
            for (int t = 0; t < tables.length; t++) {
                tables[t] = d.allocateWithinRegion(16 * 8, 16).gpa();
                for (int i = 0; i < 8; i++) {
                    d.pokeIndirectDescriptor(tables[t], i, address(data, d), length(data),
                            data.consumeInt(0, 7), data.consumeInt(0, 9));
                }
            }
            for (int i = 0; i < size; i++) {
                boolean indirect = data.consumeInt(0, 4) == 0;
                long addr = indirect ? tables[data.consumeInt(0, 1)] : address(data, d);
                int len = indirect ? 16 * data.consumeInt(0, 9) : length(data);
                int flags = indirect ? RingDriver.F_INDIRECT | data.consumeInt(0, 3) : data.consumeInt(0, 7);
                d.pokeDescriptor(i, addr, len, flags, data.consumeInt(0, size + 1));
            }
            walk(data, d, q, size);
        }
    }

    private static void walk(FuzzedDataProvider data, RingDriver d, SplitQueue q, int size) {
        try (Chain c = q.newChain()) {
            int popped = 0;
            int bad = 0;
            byte[] scratch = new byte[64];
            for (int r = 0; r < 3 * size && data.remainingBytes() > 0; r++) {
                switch (data.consumeInt(0, 7)) {
                    case 0 -> d.setAvailIdx(data.consumeInt(0, 65535));
                    case 1 -> d.publishHead(data.consumeInt(0, 65535));
                    default -> d.publishHead(data.consumeInt(0, size - 1));
                }
                int res;
                try {
                    res = q.pop(c);
                } catch (RuntimeException e) {
                    throw new AssertionError("pop threw", e);
                }
                switch (res) {
                    case SplitQueue.POPPED -> {
                        popped++;
                        checkChain(d, c, scratch);
                        q.pushUsed(c.head(), 0);
                    }
                    case SplitQueue.BAD_CHAIN -> bad++;
                    case SplitQueue.EMPTY, SplitQueue.BROKEN -> {
                    }
                    default -> fail("pop returned " + res);
                }
                q.publishUsed();
                q.enableNotifications();
                if (q.isBroken()) {
                    break;
                }
            }
            QueueStats s = q.stats();
            assertEquals(popped, s.chains());
            assertEquals(bad + (q.isBroken() ? 1 : 0), s.badChains());
        }
    }

    private static void checkChain(RingDriver d, Chain c, byte[] scratch) {
        assertTrue(c.head() >= 0 && c.head() < d.size(), "head " + c.head());
        assertTrue(c.segmentCount() > 0 || c.totalLength() == 0);
        assertTrue(c.segmentCount() <= c.capacity(), "segments " + c.segmentCount());
        long sum = 0;
        for (int s = 0; s < c.segmentCount(); s++) {
            assertTrue(c.length(s) >= 0);
            assertTrue(insideOneRegion(d, c.hostAddress(s), c.length(s)), "segment " + s + " outside guest RAM");
            sum += c.length(s);
        }
        assertEquals(sum, c.totalLength());
        assertTrue(sum <= Integer.MAX_VALUE);
        // Copying through the chain touches only what it holds.
        int want = (int) Math.min(sum, scratch.length);
        if (c.isWritable()) {
            assertEquals(want, c.copyIn(0, scratch, 0, want));
        } else {
            assertEquals(want, c.copyOut(0, scratch, 0, want));
        }
    }

    private static boolean insideOneRegion(RingDriver d, long host, long len) {
        GuestMemory m = d.memory();
        for (int i = 0; i < m.regionCount(); i++) {
            GuestRegion r = m.region(i);
            long start = r.mapping().address();
            if (host >= start && host + len <= start + r.size()) {
                return true;
            }
        }
        return false;
    }
}
