package io.vportd.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;

/**
 * Linux epoll(7). {@link #ctl} and {@link #poll} are data-path calls: they never throw and never
 * allocate, and return the result or {@code -errno}.
 */
public final class Epoll {

    private Epoll() {
    }

    public static final int EPOLLIN = 0x001;
    public static final int EPOLLPRI = 0x002;
    public static final int EPOLLOUT = 0x004;
    public static final int EPOLLERR = 0x008;
    public static final int EPOLLHUP = 0x010;
    public static final int EPOLLRDHUP = 0x2000;
    public static final int EPOLLET = 1 << 31;
    public static final int EPOLL_CTL_ADD = 1;
    public static final int EPOLL_CTL_DEL = 2;
    public static final int EPOLL_CTL_MOD = 3;
    /** Size of the packed x86_64 {@code struct epoll_event}: u32 events at +0, u64 data at +4. */
    public static final int EPOLL_EVENT_SIZE = 12;

    private static final int EPOLL_CLOEXEC = 02000000;

    private static final class EpollCreate1 {
        static final MethodHandle H =
                Libc.linkInt("epoll_create1");
    }
    private static final class EpollCtl {
        static final MethodHandle H =
                Libc.linkInt("epoll_ctl");
    }
    private static final class EpollWait {
        static final MethodHandle H =
                Libc.linkInt("epoll_wait");
    }

    /** epoll_create1(EPOLL_CLOEXEC). */
    public static Fd create() throws NativeException {
        return Fd.adopt((int) Libc.check("epoll_create1", cap -> Libc.call(EpollCreate1.H, cap, EPOLL_CLOEXEC)));
    }

    /** epoll_ctl(2) with {@code events} and the 64-bit user {@code data}: 0 or -errno. */
    public static int ctl(int epfd, int op, int fd, int events, long data) {
        Libc.Scratch s = Libc.scratch();
        MemorySegment ev = s.event;
        ev.set(JAVA_INT_UNALIGNED, 0, events);
        ev.set(JAVA_LONG_UNALIGNED, 4, data);
        try {
            return Libc.orErrno(Libc.call(EpollCtl.H, s.capture, epfd, op, fd, ev.address()), s.capture);
        } catch (Throwable t) {
            throw Libc.linkageBug(t);
        }
    }

    /**
     * epoll_wait(2) into {@code events} (packed 12-byte entries, see {@link #allocateEvents}):
     * number of ready entries, 0 on timeout, or -errno (-EINVAL when {@code max} does not fit).
     * EINTR is retried.
     */
    public static int poll(int epfd, MemorySegment events, int max, int timeoutMs) {
        if (max <= 0 || (long) max * EPOLL_EVENT_SIZE > events.byteSize() || !events.isNative()) {
            return -Errno.EINVAL;
        }
        MemorySegment cap = Libc.capture();
        long addr = events.address();
        try {
            int r;
            do {
                r = Libc.orErrno(Libc.call(EpollWait.H, cap, epfd, addr, max, timeoutMs), cap);
            } while (r == -Errno.EINTR);
            return r;
        } catch (Throwable t) {
            throw Libc.linkageBug(t);
        }
    }

    /** A native array for {@code count} packed epoll events. */
    public static MemorySegment allocateEvents(Arena arena, int count) {
        return arena.allocate((long) EPOLL_EVENT_SIZE * count, 8);
    }

    /** The event mask of entry {@code i}. */
    public static int eventMask(MemorySegment events, int i) {
        return events.get(JAVA_INT_UNALIGNED, (long) i * EPOLL_EVENT_SIZE);
    }

    /** The 64-bit user data of entry {@code i}. */
    public static long eventData(MemorySegment events, int i) {
        return events.get(JAVA_LONG_UNALIGNED, (long) i * EPOLL_EVENT_SIZE + 4);
    }
}
