package io.vportd.vring.testing;

import io.vportd.vring.GuestMemory;
import io.vportd.vring.GuestRegion;

import java.lang.foreign.MemorySegment;

/**
 * Bounds-checked views of host addresses inside guest memory, found through the region
 * mappings: lets tests follow iovec base addresses without restricted FFM calls.
 */
public final class HostView {

    private HostView() {
    }

    /** A view of host [address, address+len) if it lies inside one region's mapping. */
    public static MemorySegment of(GuestMemory memory, long address, long len) {
        for (int i = 0; i < memory.regionCount(); i++) {
            GuestRegion r = memory.region(i);
            long off = address - r.mapping().address();
            if (off >= 0 && len >= 0 && off <= r.size() - len) {
                return r.mapping().asSlice(off, len);
            }
        }
        throw new IllegalArgumentException(String.format("host 0x%x+%d is not in guest memory", address, len));
    }
}
