package io.vportd.console.portlog;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The replay ring keeps exactly the last N bytes, whatever the sizes of the pieces. */
class ReplayRingTest {

    @Test
    void keepsTheLastCapacityBytesInOrder() {
        Random r = new Random(15);
        for (int cap : new int[] {1, 7, 100, 4096, 10_000, 65_536}) {
            ReplayRing ring = new ReplayRing(cap);
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            for (int i = 0; i < 300; i++) {
                // big rings get small pieces too, so they grow in steps and then wrap
                byte[] piece = new byte[r.nextInt(Math.min(cap * 3, 2_000) + 1)];
                r.nextBytes(piece);
                ring.append(piece, 0, piece.length);
                all.writeBytes(piece);
                byte[] a = all.toByteArray();
                assertArrayEquals(Arrays.copyOfRange(a, Math.max(0, a.length - cap), a.length), ring.snapshot(),
                        "capacity " + cap + " after piece " + i);
                assertEquals(a.length, ring.total());
            }
        }
    }

    @Test
    void growsWithTheOutputUpToItsCapacity() {
        ReplayRing ring = new ReplayRing(65_536);
        assertEquals(0, ring.allocated(), "a port that said nothing holds no ring");
        assertEquals(0, ring.snapshot().length);
        ring.append(new byte[] {'a', 'b'}, 0, 2);
        assertEquals(ReplayRing.FIRST, ring.allocated());
        assertArrayEquals(new byte[] {'a', 'b'}, ring.snapshot());
        ring.append(new byte[10_000], 0, 10_000);
        assertEquals(16_384, ring.allocated(), "doubling, and at least what it holds");
        ring.append(new byte[100_000], 0, 100_000);
        assertEquals(65_536, ring.allocated(), "never beyond its capacity");
        assertEquals(65_536, ring.size());
    }
}
