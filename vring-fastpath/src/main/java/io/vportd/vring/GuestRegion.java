package io.vportd.vring;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * One contiguous piece of guest RAM as the device sees it: where it sits in guest physical
 * address space, where the frontend (QEMU) has it in its own virtual address space, and the
 * host mapping that backs it. The mapping's byte size is the region size; the mapping's
 * lifetime belongs to whoever built the region (the vhost-user session or a test driver).
 *
 * @param guestPhysAddr first guest physical address of the region
 * @param size          length in bytes, at least 1
 * @param userAddr      the frontend's virtual address of the first byte (vring addresses use it)
 * @param mapping       host mapping of exactly {@code size} bytes
 */
public record GuestRegion(long guestPhysAddr, long size, long userAddr, MemorySegment mapping) {

    public GuestRegion {
        Objects.requireNonNull(mapping, "mapping");
        if (size <= 0) {
            throw new IllegalArgumentException("region size must be positive: " + size);
        }
        if (mapping.byteSize() != size) {
            throw new IllegalArgumentException(
                    "mapping is " + mapping.byteSize() + " bytes, region is " + size);
        }
        // Unsigned: the last byte (start + size - 1) must not pass 2^64 - 1.
        if (Long.compareUnsigned(guestPhysAddr + (size - 1), guestPhysAddr) < 0) {
            throw new IllegalArgumentException("guest physical range wraps: 0x" + Long.toHexString(guestPhysAddr)
                    + "+0x" + Long.toHexString(size));
        }
        if (Long.compareUnsigned(userAddr + (size - 1), userAddr) < 0) {
            throw new IllegalArgumentException("user address range wraps: 0x" + Long.toHexString(userAddr)
                    + "+0x" + Long.toHexString(size));
        }
    }

    /** True when [gpa, gpa+len) lies wholly in this region (len 0 counts as inside if gpa does). */
    public boolean containsGuest(long gpa, long len) {
        return contains(guestPhysAddr, gpa, len);
    }

    /** True when [uaddr, uaddr+len) lies wholly in this region's frontend virtual range. */
    public boolean containsUser(long uaddr, long len) {
        return contains(userAddr, uaddr, len);
    }

    private boolean contains(long start, long addr, long len) {
        if (len < 0) {
            return false;
        }
        long off = addr - start;
        // Unsigned comparisons: off must be in [0, size) and off + len must not pass size.
        return Long.compareUnsigned(off, size) < 0 && Long.compareUnsigned(len, size - off) <= 0;
    }
}
