package io.vportd.sys;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Linux eventfd(2) counters: kick and call descriptors of virtqueues, wake-ups of loops.
 * {@link #write}, {@link #signal} and {@link #drain} are data-path calls: no exception, no
 * allocation (the 8-byte value goes through a per-thread buffer).
 */
public final class EventFd {

    private EventFd() {
    }

    public static final int EFD_SEMAPHORE = 1;
    public static final int EFD_NONBLOCK = 04000;
    public static final int EFD_CLOEXEC = 02000000;

    private static final class Eventfd {
        static final MethodHandle H =
                Libc.linkInt("eventfd");
    }

    /** eventfd(2); {@link #EFD_CLOEXEC} is always added. */
    public static Fd create(int initval, int flags) throws NativeException {
        return Fd.adopt((int) Libc.check("eventfd", cap -> Libc.call(Eventfd.H, cap, initval, flags | EFD_CLOEXEC)));
    }

    /** Adds {@code value} to an eventfd counter: 8 or -errno (-EAGAIN when it would overflow). */
    public static int write(int fd, long value) {
        MemorySegment buf = Libc.scratch().u64;
        buf.set(JAVA_LONG, 0, value);
        return (int) Io.write(fd, buf.address(), 8);
    }

    /** eventfd_write(3), the C library's 8-byte write to an eventfd, in the shape most calls share. */
    private static final class EventfdWrite {
        static final MethodHandle H = Libc.linkInt("eventfd_write");
    }

    /**
     * Wakes a thread waiting on one of vportd's own eventfds (made by {@link #create}): adds 1
     * through eventfd_write(3), whose call shape most calls share, so a daemon's first wake-up at
     * start-up links nothing new. Returns 0 or -errno. Not for a descriptor a frontend gave (a call
     * fd may be any kind of file, and eventfd_write cannot tell a short write): use {@link #signal}.
     */
    public static int wake(int fd) {
        MemorySegment cap = Libc.capture();
        try {
            while (true) {
                if (Libc.call(EventfdWrite.H, cap, fd, 1L) == 0) {
                    return 0;
                }
                int e = Libc.errno(cap);
                if (e != Errno.EINTR) {
                    return -e;
                }
            }
        } catch (Throwable t) {
            throw Libc.linkageBug(t);
        }
    }

    /** Adds 1 to an eventfd counter: 8 or -errno. */
    public static int signal(int fd) {
        return write(fd, 1);
    }

    /**
     * Reads and resets an eventfd counter: the value (positive), or -errno; -EAGAIN when the
     * counter is zero on a non-blocking eventfd.
     */
    public static long drain(int fd) {
        MemorySegment buf = Libc.scratch().u64;
        long r = Io.read(fd, buf.address(), 8);
        if (r < 0) {
            return r;
        }
        if (r != 8) {
            return -Errno.EIO;
        }
        long v = buf.get(JAVA_LONG, 0);
        return v < 0 ? Long.MAX_VALUE : v;
    }
}
