package io.vportd.vring;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * An immutable snapshot of the guest's memory regions, with bounds-checked translation of guest
 * physical addresses (what descriptors carry) and frontend virtual addresses (what vring
 * addresses carry). A new table is a new instance, so a ring worker never sees a half-changed
 * table; unmapping the old regions is the owner's business once no worker uses them.
 *
 * <p>Translation never throws for bad input and never allocates: it returns {@code -1} for a
 * range that is not wholly inside one region. The guest is untrusted, so every caller checks.
 */
public final class GuestMemory {

    /** Returned by the look-ups when the range is outside every region. */
    public static final int NOT_FOUND = -1;

    private static final GuestRegion[] NO_REGIONS = new GuestRegion[0];
    private static final GuestMemory EMPTY = new GuestMemory(NO_REGIONS);

    private final GuestRegion[] regions;

    private GuestMemory(GuestRegion[] regions) {
        this.regions = regions;
    }

    public static GuestMemory empty() {
        return EMPTY;
    }

    /**
     * Builds a table; regions may come in any order but must not overlap in either address space.
     *
     * @throws IllegalArgumentException naming the two regions that overlap
     */
    public static GuestMemory of(List<GuestRegion> list) {
        GuestRegion[] sorted = list.toArray(NO_REGIONS);
        Arrays.sort(sorted, (a, b) -> Long.compareUnsigned(a.guestPhysAddr(), b.guestPhysAddr()));
        for (int i = 0; i < sorted.length; i++) {
            for (int j = i + 1; j < sorted.length; j++) {
                GuestRegion a = sorted[i];
                GuestRegion b = sorted[j];
                if (overlaps(a.guestPhysAddr(), a.size(), b.guestPhysAddr(), b.size())
                        || overlaps(a.userAddr(), a.size(), b.userAddr(), b.size())) {
                    throw new IllegalArgumentException("memory regions overlap: " + describe(a) + " and " + describe(b));
                }
            }
        }
        return new GuestMemory(sorted);
    }

    private static boolean overlaps(long s1, long l1, long s2, long l2) {
        // [s1, s1+l1) and [s2, s2+l2) overlap, unsigned, lengths positive.
        return Long.compareUnsigned(s2 - s1, l1) < 0 || Long.compareUnsigned(s1 - s2, l2) < 0;
    }

    private static String describe(GuestRegion r) {
        return String.format("[gpa 0x%x size 0x%x uaddr 0x%x]", r.guestPhysAddr(), r.size(), r.userAddr());
    }

    public int regionCount() {
        return regions.length;
    }

    public GuestRegion region(int index) {
        return regions[index];
    }

    /** Index of the region holding all of guest physical [gpa, gpa+len), or {@link #NOT_FOUND}. */
    public int findGuest(long gpa, long len) {
        GuestRegion[] rs = regions;
        for (int i = 0; i < rs.length; i++) {
            if (rs[i].containsGuest(gpa, len)) {
                return i;
            }
        }
        return NOT_FOUND;
    }

    /** Index of the region holding all of frontend virtual [uaddr, uaddr+len), or {@link #NOT_FOUND}. */
    public int findUser(long uaddr, long len) {
        GuestRegion[] rs = regions;
        for (int i = 0; i < rs.length; i++) {
            if (rs[i].containsUser(uaddr, len)) {
                return i;
            }
        }
        return NOT_FOUND;
    }

    /**
     * Host address of guest physical {@code gpa} when all of [gpa, gpa+len) is mapped, else 0
     * (a native mapping never starts at address 0).
     */
    public long hostAddress(long gpa, long len) {
        int i = findGuest(gpa, len);
        if (i < 0) {
            return 0;
        }
        GuestRegion r = regions[i];
        return r.mapping().address() + (gpa - r.guestPhysAddr());
    }

    /**
     * A bounds-checked slice for guest physical [gpa, gpa+len), or {@code null}. Allocates a
     * segment object: for set-up paths (ring addresses), not per descriptor.
     */
    public MemorySegment sliceGuest(long gpa, long len) {
        int i = findGuest(gpa, len);
        if (i < 0) {
            return null;
        }
        GuestRegion r = regions[i];
        return r.mapping().asSlice(gpa - r.guestPhysAddr(), len);
    }

    /** A bounds-checked slice for frontend virtual [uaddr, uaddr+len), or {@code null}. */
    public MemorySegment sliceUser(long uaddr, long len) {
        int i = findUser(uaddr, len);
        if (i < 0) {
            return null;
        }
        GuestRegion r = regions[i];
        return r.mapping().asSlice(uaddr - r.userAddr(), len);
    }

    /**
     * True when host [addr, addr+len) lies wholly inside one region's mapping: lets a holder of
     * translated addresses check they survived a memory table change.
     */
    public boolean containsHost(long addr, long len) {
        for (GuestRegion r : regions) {
            long off = addr - r.mapping().address();
            if (len >= 0 && Long.compareUnsigned(off, r.size()) < 0 && Long.compareUnsigned(len, r.size() - off) <= 0) {
                return true;
            }
        }
        return false;
    }

    /** Guest physical address of frontend virtual {@code uaddr}, or -1 when it is not mapped. */
    public long userToGuest(long uaddr) {
        int i = findUser(uaddr, 1);
        if (i < 0) {
            return -1;
        }
        GuestRegion r = regions[i];
        return r.guestPhysAddr() + (uaddr - r.userAddr());
    }
}
