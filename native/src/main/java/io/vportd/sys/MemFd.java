package io.vportd.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Shared memory files and their mappings: Linux memfd_create(2) with seals, ftruncate, the size
 * from fstat, and MAP_SHARED mappings (mmap/munmap) whose lifetime is an {@link Arena}.
 */
public final class MemFd {

    private MemFd() {
    }

    public static final int F_SEAL_SEAL = 0x1;
    public static final int F_SEAL_SHRINK = 0x2;
    public static final int F_SEAL_GROW = 0x4;
    public static final int F_SEAL_WRITE = 0x8;

    private static final int F_ADD_SEALS = 1033;
    private static final int F_GET_SEALS = 1034;
    private static final int PROT_READ = 1;
    private static final int PROT_WRITE = 2;
    private static final int MAP_SHARED = 1;
    private static final int MFD_CLOEXEC = 1;
    private static final int MFD_ALLOW_SEALING = 2;
    private static final long STAT_SIZE = 144;   // struct stat, x86_64
    private static final long STAT_ST_SIZE = 48; // st_size offset

    private static final class MemfdCreate {
        static final MethodHandle H =
                Libc.linkInt("memfd_create");
    }
    private static final class Ftruncate {
        static final MethodHandle H =
                Libc.linkInt("ftruncate");
    }
    private static final class Fstat {
        static final MethodHandle H =
                Libc.linkInt("fstat");
    }
    private static final class Mmap {
        static final MethodHandle H =
                Libc.link("mmap", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    }
    private static final class Munmap {
        static final MethodHandle H =
                Libc.linkInt("munmap");
    }

    /** memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING); size 0 until {@link #truncate}. */
    public static Fd create(String name) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cname = arena.allocateFrom(name);
            return Fd.adopt((int) Libc.check("memfd_create(" + name + ")",
                    cap -> Libc.call(MemfdCreate.H, cap, cname.address(), MFD_CLOEXEC | MFD_ALLOW_SEALING)));
        }
    }

    /** ftruncate(2). */
    public static void truncate(int fd, long len) throws NativeException {
        Libc.check("ftruncate(" + fd + ", " + len + ")", cap -> Libc.call(Ftruncate.H, cap, fd, len));
    }

    /**
     * The memfd seals of {@code fd} (F_GET_SEALS), or -errno (-EINVAL for files that cannot be
     * sealed). A mapping of a file that can still shrink may fault (SIGBUS) after a truncate.
     */
    public static int seals(int fd) {
        return (int) Libc.once(cap -> (int) Io.Fcntl.H.invokeExact(cap, fd, F_GET_SEALS, 0));
    }

    /** Adds memfd seals (F_ADD_SEALS). */
    public static void addSeals(int fd, int seals) throws NativeException {
        Libc.check("fcntl(" + fd + ", F_ADD_SEALS)", cap -> (int) Io.Fcntl.H.invokeExact(cap, fd, F_ADD_SEALS, seals));
    }

    /** Size in bytes of the file behind {@code fd} (fstat st_size); use before mapping it. */
    public static long size(int fd) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(STAT_SIZE, 8);
            Libc.check("fstat(" + fd + ")", cap -> Libc.call(Fstat.H, cap, fd, st.address()));
            return st.get(JAVA_LONG, STAT_ST_SIZE);
        }
    }

    /**
     * A MAP_SHARED read/write mapping of {@code len} bytes of {@code fd} from {@code offset}
     * (page aligned), unmapped when {@code arena} closes. Use one arena per mapping. The
     * descriptor may be closed once this returns.
     */
    public static MemorySegment mapShared(int fd, long offset, long len, Arena arena) throws NativeException {
        String what = "mmap(fd " + fd + ", offset " + offset + ", len " + len + ")";
        if (len <= 0 || offset < 0) {
            throw new NativeException(what, Errno.EINVAL);
        }
        // user-space addresses are positive on x86_64 and aarch64: only MAP_FAILED (-1) is negative
        long addr = Libc.check(what, cap -> (long) Mmap.H.invokeExact(cap, 0L, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset));
        try {
            return MemorySegment.ofAddress(addr).reinterpret(len, arena, ignored -> munmap(addr, len));
        } catch (RuntimeException e) {
            munmap(addr, len); // arena already closed or not ours: do not leak the mapping
            throw e;
        }
    }

    private static int munmap(long addr, long len) {
        return (int) Libc.once(cap -> Libc.call(Munmap.H, cap, addr, len));
    }
}
