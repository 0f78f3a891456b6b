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
        for (int cap : new int[] {1, 7, 100, 4096}) {
            ReplayRing ring = new ReplayRing(cap);
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            for (int i = 0; i < 300; i++) {
                byte[] piece = new byte[r.nextInt(cap * 3 + 1)];
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
}
