package io.vportd.vring;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** Issue 11.4: region ranges are checked as unsigned 64-bit numbers. */
class GuestRegionWrapTest {

    private static final long SIZE = 0x2000;

    private static GuestRegion region(Arena a, long gpa, long uaddr) {
        MemorySegment m = a.allocate(SIZE);
        return new GuestRegion(gpa, SIZE, uaddr, m);
    }

    @Test
    void rangesPassingTwoToThe64AreRefused() {
        try (Arena a = Arena.ofConfined()) {
            assertThrows(IllegalArgumentException.class, () -> region(a, 0xffff_ffff_ffff_f000L, 0x1000));
            assertThrows(IllegalArgumentException.class, () -> region(a, 0x1000, 0xffff_ffff_ffff_f000L));
        }
    }

    @Test
    void rangesCrossingTheSignBitOrEndingAtTwoToThe64AreFine() {
        try (Arena a = Arena.ofConfined()) {
            assertDoesNotThrow(() -> region(a, 0x7fff_ffff_ffff_f000L, 0x7fff_ffff_ffff_f000L));
            assertDoesNotThrow(() -> region(a, 0xffff_ffff_ffff_e000L, 0xffff_ffff_ffff_e000L));
        }
    }
}
