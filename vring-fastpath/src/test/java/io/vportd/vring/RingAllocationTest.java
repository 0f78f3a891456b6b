package io.vportd.vring;

import io.vportd.vring.testing.RingDriver;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * pop / pushUsed / publishUsed / notification calls and the iovec cursor must not allocate.
 * Counted with the per-thread allocation counter over many operations: any per-chain object
 * (16 bytes or more) would add up to megabytes, while a stray deoptimisation stays far below
 * the bound.
 */
class RingAllocationTest {

    private static long allocated() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    private static long rounds(RingDriver d, SplitQueue q, Chain c, long[] gpas, int[] lens, int n) {
        long sum = 0;
        for (int i = 0; i < n; i++) {
            d.add(gpas, lens, gpas.length, 0);
            q.disableNotifications();
            while (q.pop(c) == SplitQueue.POPPED) {
                sum += c.totalLength() + c.segmentCount();
                c.advance(1);
                sum += c.iovAddress() + c.iovCount();
                q.pushUsed(c.head(), 0);
            }
            sum += q.publishUsed() ? 1 : 0;
            sum += q.enableNotifications() ? 1 : 0;
            sum += d.kickNeeded() ? 1 : 0;
            sum += d.reclaimUsed();
        }
        return sum;
    }

    @Test
    void ringOperationsDoNotAllocate() {
        for (boolean eventIdx : new boolean[] {false, true}) {
            try (RingDriver d = new RingDriver(64, eventIdx, 8L << 20, 2)) {
                SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
                long[] gpas = new long[3];
                int[] lens = new int[3];
                for (int i = 0; i < 3; i++) {
                    gpas[i] = i == 1 ? d.bufferAtRegionEnd(0, 64, 32).gpa() : d.allocate(64).gpa();
                    lens[i] = 64;
                }
                try (Chain c = q.newChain()) {
                    long sink = rounds(d, q, c, gpas, lens, 50_000); // warm up
                    final int n = 100_000;
                    long before = allocated();
                    sink += rounds(d, q, c, gpas, lens, n);
                    long bytes = allocated() - before;
                    assertTrue(bytes < n / 10, "allocated " + bytes + " bytes over " + n + " chains (sink " + sink + ")");
                    assertTrue(q.stats().badChains() == 0);
                }
            }
        }
    }
}
