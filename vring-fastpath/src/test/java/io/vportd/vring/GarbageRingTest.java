package io.vportd.vring;

import io.vportd.vring.testing.RingDriver;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A guest that writes random bytes, biased towards almost-plausible values, into its descriptor
 * table, indirect tables and available ring. Whatever it writes, pop() returns a defined code,
 * never throws, never yields a segment outside guest memory, and every chain it refuses is counted.
 */
class GarbageRingTest {

    @Test
    void popSurvivesRandomRings() {
        long[] totals = new long[3];
        for (int seed = 0; seed < 400; seed++) {
            run(seed, totals);
        }
        // The generator must exercise all outcomes, or the test proves little.
        assertTrue(totals[0] > 100, "good chains " + totals[0]);
        assertTrue(totals[1] > 100, "bad chains " + totals[1]);
        assertTrue(totals[2] > 10, "broken queues " + totals[2]);
    }

    private static long plausibleAddress(Random rnd, RingDriver d) {
        return switch (rnd.nextInt(6)) {
            case 0 -> rnd.nextLong();
            case 1 -> d.memoryEnd() - rnd.nextInt(256);
            case 2 -> RingDriver.GPA_BASE - rnd.nextInt(64);
            case 3 -> RingDriver.USER_BASE + rnd.nextInt(4096);
            default -> RingDriver.GPA_BASE + (long) (rnd.nextDouble() * (d.memoryEnd() - RingDriver.GPA_BASE));
        };
    }

    private static int plausibleLength(Random rnd) {
        return switch (rnd.nextInt(5)) {
            case 0 -> rnd.nextInt();
            case 1 -> 16 * rnd.nextInt(8);
            default -> rnd.nextInt(5000);
        };
    }

    private static void run(int seed, long[] totals) {
        Random rnd = new Random(seed);
        int size = 1 << rnd.nextInt(6);
        int regions = 1 + rnd.nextInt(3);
        try (RingDriver d = new RingDriver(size, rnd.nextBoolean(), (64L << 10) * regions, regions)) {
            SplitQueue q = d.newDeviceQueue(rnd.nextBoolean() ? Direction.DEVICE_READS : Direction.DEVICE_WRITES);
            // A few indirect tables full of garbage, inside guest memory.
            long[] tables = new long[3];
            for (int t = 0; t < tables.length; t++) {
                tables[t] = d.allocateWithinRegion(16 * 8, 16).gpa();
                for (int i = 0; i < 8; i++) {
                    d.pokeIndirectDescriptor(tables[t], i, plausibleAddress(rnd, d), plausibleLength(rnd),
                            rnd.nextInt(8), rnd.nextInt(10));
                }
            }
            for (int i = 0; i < size; i++) {
                boolean ind = rnd.nextInt(5) == 0;
                long addr = ind ? tables[rnd.nextInt(3)] : plausibleAddress(rnd, d);
                int len = ind ? 16 * rnd.nextInt(10) : plausibleLength(rnd);
                int flags = ind ? RingDriver.F_INDIRECT | rnd.nextInt(4) : rnd.nextInt(8);
                d.pokeDescriptor(i, addr, len, flags, rnd.nextInt(size + 2));
            }
            try (Chain c = q.newChain()) {
                int rounds = 3 * size;
                int popped = 0;
                int bad = 0;
                for (int r = 0; r < rounds; r++) {
                    if (rnd.nextInt(40) == 0) {
                        d.setAvailIdx(rnd.nextInt(65536));
                    } else {
                        d.publishHead(rnd.nextInt(4) == 0 ? rnd.nextInt(65536) : rnd.nextInt(size));
                    }
                    int res;
                    try {
                        res = q.pop(c);
                    } catch (RuntimeException e) {
                        throw new AssertionError("seed " + seed + ": pop threw", e);
                    }
                    switch (res) {
                        case SplitQueue.POPPED -> {
                            popped++;
                            long sum = 0;
                            for (int s = 0; s < c.segmentCount(); s++) {
                                long host = c.hostAddress(s);
                                assertTrue(insideSomeRegion(d, host, c.length(s)), "seed " + seed);
                                sum += c.length(s);
                            }
                            assertEquals(sum, c.totalLength());
                            assertTrue(sum <= Integer.MAX_VALUE);
                            q.pushUsed(c.head(), 0);
                        }
                        case SplitQueue.BAD_CHAIN -> bad++;
                        case SplitQueue.EMPTY, SplitQueue.BROKEN -> {
                        }
                        default -> fail("seed " + seed + ": pop returned " + res);
                    }
                    q.publishUsed();
                    q.enableNotifications();
                    if (q.isBroken()) {
                        break;
                    }
                }
                QueueStats s = q.stats();
                assertEquals(popped, s.chains(), "seed " + seed);
                assertEquals(bad + (q.isBroken() ? 1 : 0), s.badChains(), "seed " + seed);
                totals[0] += popped;
                totals[1] += bad;
                totals[2] += q.isBroken() ? 1 : 0;
            }
        }
    }

    private static boolean insideSomeRegion(RingDriver d, long host, long len) {
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
