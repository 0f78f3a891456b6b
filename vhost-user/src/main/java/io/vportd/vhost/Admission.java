package io.vportd.vhost;

import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.Io;
import io.vportd.sys.MemFd;
import io.vportd.vring.GuestRegion;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What a {@link Session} checks before it accepts a resource the frontend hands over: ring
 * descriptors (eventfds only, made non-blocking) and guest memory regions (sizes, unsigned
 * ranges, file size, seals, then the mapping). Refusals are {@link VhostProtocolException}s and
 * are counted in {@link VhostStats}.
 */
final class Admission {


    private Admission() {
    }

    /**
     * Checks that a kick/call/err descriptor is an eventfd and makes it non-blocking; refuses
     * (closing it) anything else. A pipe or socket could block the data plane's interrupt write
     * forever or, hung up, wake it on every cycle; a blocking eventfd whose counter is near its
     * maximum would block the write too. Non-blocking, a saturated eventfd answers EAGAIN, and
     * the guest is then going to be interrupted anyway.
     *
     * <p>The check reads the {@code /proc/self/fd/N} link ({@code anon_inode:[eventfd]}): one
     * exact string, no new native call, and only on ring set-up messages. Without {@code /proc}
     * nothing can be checked and the descriptor is refused.
     */
    static Fd eventfd(Request r, int queue, Fd fd, VhostStats stats) throws VhostProtocolException {
        String what;
        try {
            what = Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd.fd())).toString();
        } catch (IOException | UnsupportedOperationException e) {
            what = "unknown (" + e.getMessage() + ")";
        }
        try {
            if (!what.equals("anon_inode:[eventfd]")) {
                throw new VhostProtocolException(r + ": queue " + queue + " descriptor is " + what + ", not an eventfd");
            }
            Io.setNonBlocking(fd.fd(), true);
        } catch (VhostProtocolException | NativeException e) {
            fd.closeQuietly();
            stats.refusedFds.incrementAndGet();
            if (e instanceof VhostProtocolException vpe) {
                throw vpe;
            }
            throw new VhostProtocolException(r + ": queue " + queue + " descriptor: " + e.getMessage(), e);
        }
        return fd;
    }

    /**
     * Checks one memory region (size, offset, unsigned range, file size, seals) and maps it
     * MAP_SHARED in its own shared arena. On success the mapping owns {@code fd} (kept open for a
     * live hand-over, closed when the region is unmapped); on failure it stays the caller's.
     */
    static MemoryTable.Mapping map(Request r, Codec.MemRegion m, Fd fd, boolean allowUnsealedMemory, VhostStats stats)
            throws VhostProtocolException {
        String what = String.format("%s: region gpa 0x%x size 0x%x uaddr 0x%x offset 0x%x",
                r, m.guestAddr(), m.size(), m.userAddr(), m.mmapOffset());
        if (m.size() <= 0 || m.size() > Session.MAX_REGION_SIZE) {
            throw new VhostProtocolException(what + ": size must be 1.." + Session.MAX_REGION_SIZE);
        }
        if (m.mmapOffset() < 0 || m.mmapOffset() > Long.MAX_VALUE - m.size()) {
            throw new VhostProtocolException(what + ": bad mmap offset");
        }
        if (wraps(m.guestAddr(), m.size()) || wraps(m.userAddr(), m.size())) {
            throw new VhostProtocolException(what + ": address range wraps");
        }
        long fileSize;
        try {
            fileSize = MemFd.size(fd.fd());
        } catch (NativeException e) {
            throw new VhostProtocolException(what + ": " + e.getMessage(), e);
        }
        if (m.mmapOffset() + m.size() > fileSize) {
            throw new VhostProtocolException(what + ": extends past the end of its " + fileSize + "-byte file");
        }
        int seals = MemFd.seals(fd.fd());
        if (seals < 0 || (seals & MemFd.F_SEAL_SHRINK) == 0) {
            // A file that can still shrink faults the device (SIGBUS) if the frontend truncates it.
            if (!allowUnsealedMemory) {
                stats.unsealedMemoryRefused.incrementAndGet();
                throw new VhostProtocolException(what + ": the file is not sealed against shrinking (F_SEAL_SHRINK)"
                        + "; refused (QEMU seals its memfd memory by default; --allow-unsealed-memory accepts"
                        + " unsealable memory such as hugetlbfs files)");
            }
            stats.unsealedMemoryAllowed.incrementAndGet();
            stats.log.log(System.Logger.Level.WARNING,
                    "vhost-user: {0}: the file is not sealed against shrinking; accepted (unsealed memory allowed)", what);
        }
        long pageOff = m.mmapOffset() & ~4095L;
        long lead = m.mmapOffset() - pageOff;
        Arena arena = Arena.ofShared();
        try {
            MemorySegment whole = MemFd.mapShared(fd.fd(), pageOff, lead + m.size(), arena);
            MemorySegment seg = whole.asSlice(lead, m.size());
            return new MemoryTable.Mapping(new GuestRegion(m.guestAddr(), m.size(), m.userAddr(), seg), arena, m, fd);
        } catch (NativeException | IllegalArgumentException e) {
            arena.close();
            throw new VhostProtocolException(what + ": " + e.getMessage(), e);
        }
    }

    /** True when [start, start + size) passes 2^64 (size at least 1). */
    static boolean wraps(long start, long size) {
        return Long.compareUnsigned(start + (size - 1), start) < 0;
    }
}
