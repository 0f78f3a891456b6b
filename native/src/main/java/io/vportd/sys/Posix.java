package io.vportd.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The one binding class for the C library (Linux, x86_64/glibc). Every restricted call of vportd
 * lives in this package.
 *
 * <p>Conventions:
 * <ul>
 *   <li>Method handles are {@code static final}, linked once, called with {@code invokeExact}.
 *       errno is captured with {@code Linker.Option.captureCallState("errno")} into a per-thread
 *       capture segment; it is never read afterwards through {@code __errno_location}.</li>
 *   <li>Set-up calls (socket, bind, mmap, eventfd, epoll_create, open, ...) return an owning
 *       {@link Fd} or throw {@link NativeException}.</li>
 *   <li>Data-path calls ({@link #read}, {@link #write}, {@link #readv}, {@link #writev},
 *       {@link #eventfdSignal}, {@link #eventfdDrain}, {@link #epollWait}, {@link #epollCtl},
 *       {@link #recvWithFds}, {@link #sendWithFds}, {@link #close(int)}) never throw and never
 *       allocate: they return the result or {@code -errno}. EINTR is retried inside.</li>
 *   <li>Host memory addresses on the data path are passed as {@code long} (an LP64 pointer and a
 *       {@code long} travel the same way on the SysV x86_64 and AAPCS64 ABIs), so no
 *       {@code MemorySegment} wrapper is made per call.</li>
 * </ul>
 */
public final class Posix {

    private Posix() {
    }

    // ---- constants -------------------------------------------------------------------------

    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_CREAT = 0100;
    public static final int O_EXCL = 0200;
    public static final int O_NOCTTY = 0400;
    public static final int O_TRUNC = 01000;
    public static final int O_APPEND = 02000;
    public static final int O_NONBLOCK = 04000;
    public static final int O_DIRECTORY = 0200000;
    public static final int O_CLOEXEC = 02000000;

    public static final int EFD_SEMAPHORE = 1;
    public static final int EFD_NONBLOCK = 04000;
    public static final int EFD_CLOEXEC = 02000000;

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

    public static final int SHUT_RD = 0;
    public static final int SHUT_WR = 1;
    public static final int SHUT_RDWR = 2;

    /** Most descriptors {@link #recvWithFds} accepts in one message. */
    public static final int MAX_RECV_FDS = 64;

    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_NONBLOCK = 04000;
    private static final int SOCK_CLOEXEC = 02000000;
    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;
    private static final int MSG_CTRUNC = 0x8;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    private static final int F_GETFL = 3;
    private static final int F_ADD_SEALS = 1033;
    private static final int F_GET_SEALS = 1034;
    private static final int F_SETFL = 4;
    private static final int PROT_READ = 1;
    private static final int PROT_WRITE = 2;
    private static final int MAP_SHARED = 1;
    private static final int MFD_CLOEXEC = 1;
    private static final int MFD_ALLOW_SEALING = 2;
    private static final long TIOCGWINSZ = 0x5413;
    private static final long TIOCSWINSZ = 0x5414;
    private static final int TCSANOW = 0;
    private static final int TERMIOS_SIZE = 60;
    private static final int SUN_PATH_MAX = 108;
    private static final long STAT_SIZE = 144;   // struct stat, x86_64
    private static final long STAT_ST_SIZE = 48; // st_size offset
    private static final int SOCKADDR_UN_SIZE = 110;

    // struct msghdr (x86_64)
    private static final long MSG_IOV = 16;
    private static final long MSG_IOVLEN = 24;
    private static final long MSG_CONTROL = 32;
    private static final long MSG_CONTROLLEN = 40;
    private static final long MSG_FLAGS = 48;
    private static final long MSGHDR_SIZE = 56;
    private static final long CMSG_HDR = 16;
    private static final long IOVEC_SIZE = 16;

    // ---- linking ---------------------------------------------------------------------------

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO_HANDLE =
            CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE = Linker.Option.captureCallState("errno");

    private static MethodHandle link(String name, FunctionDescriptor desc, Linker.Option... options) {
        MemorySegment symbol = LIBC.find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
        return LINKER.downcallHandle(symbol, desc, options);
    }

    private static MethodHandle linkErrno(String name, FunctionDescriptor desc) {
        return link(name, desc, CAPTURE);
    }

    private static MethodHandle linkVariadicErrno(String name, FunctionDescriptor desc, int firstVariadic) {
        return link(name, desc, CAPTURE, Linker.Option.firstVariadicArg(firstVariadic));
    }

    private static final MethodHandle CLOSE = linkErrno("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle READ = linkErrno("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle WRITE = linkErrno("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle READV = linkErrno("readv", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
    private static final MethodHandle WRITEV = linkErrno("writev", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
    private static final MethodHandle FCNTL = linkVariadicErrno("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), 2);
    private static final MethodHandle EVENTFD = linkErrno("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle EPOLL_CREATE1 = linkErrno("epoll_create1", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle EPOLL_CTL = linkErrno("epoll_ctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle EPOLL_WAIT = linkErrno("epoll_wait", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT));
    private static final MethodHandle SOCKET = linkErrno("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle BIND = linkErrno("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle LISTEN = linkErrno("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle ACCEPT4 = linkErrno("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));
    private static final MethodHandle CONNECT = linkErrno("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SOCKETPAIR = linkErrno("socketpair", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle SHUTDOWN = linkErrno("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle RECVMSG = linkErrno("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
    private static final MethodHandle SENDMSG = linkErrno("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
    private static final MethodHandle CHMOD = linkErrno("chmod", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle OPEN = linkVariadicErrno("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), 2);
    private static final MethodHandle PIPE2 = linkErrno("pipe2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle MEMFD_CREATE = linkErrno("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle FTRUNCATE = linkErrno("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MMAP = linkErrno("mmap", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle FSTAT = linkErrno("fstat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle MUNMAP = linkErrno("munmap", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle ISATTY = linkErrno("isatty", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle IOCTL_PTR = linkVariadicErrno("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), 2);
    private static final MethodHandle TCGETATTR = linkErrno("tcgetattr", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle TCSETATTR = linkErrno("tcsetattr", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle CFMAKERAW = link("cfmakeraw", FunctionDescriptor.ofVoid(ADDRESS));
    private static final MethodHandle POSIX_OPENPT = linkErrno("posix_openpt", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle GRANTPT = linkErrno("grantpt", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle UNLOCKPT = linkErrno("unlockpt", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle PTSNAME_R = linkErrno("ptsname_r", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG));

    // ---- per-thread scratch ----------------------------------------------------------------

    /** Per-thread native scratch: errno capture state plus small buffers for the data path. */
    private static final class Scratch {
        final MemorySegment capture;
        final MemorySegment u64;
        final MemorySegment event;
        final MemorySegment msghdr;
        final MemorySegment iovec;
        final MemorySegment control;

        Scratch() {
            Arena arena = Arena.ofAuto(); // lives as long as the thread's scratch object
            capture = arena.allocate(CAPTURE_LAYOUT);
            u64 = arena.allocate(8, 8);
            event = arena.allocate(16, 8);
            msghdr = arena.allocate(MSGHDR_SIZE, 8);
            iovec = arena.allocate(IOVEC_SIZE, 8);
            control = arena.allocate(CMSG_HDR + 4L * MAX_RECV_FDS, 8);
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static MemorySegment capture() {
        return SCRATCH.get().capture;
    }

    private static int errno(MemorySegment capture) {
        return (int) ERRNO_HANDLE.get(capture, 0L);
    }

    private static AssertionError linkageBug(Throwable t) {
        return new AssertionError("native call failed to invoke", t);
    }

    // ---- descriptors and the data path -------------------------------------------------

    /** close(2): 0 or -errno. Never retried (Linux releases the descriptor even on EINTR). */
    public static int close(int fd) {
        MemorySegment cap = capture();
        try {
            int r = (int) CLOSE.invokeExact(cap, fd);
            return r < 0 ? -errno(cap) : r;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** read(2) into host memory at {@code addr}: bytes read (0 = EOF) or -errno. */
    public static long read(int fd, long addr, long len) {
        MemorySegment cap = capture();
        try {
            while (true) {
                long r = (long) READ.invokeExact(cap, fd, addr, len);
                if (r >= 0) {
                    return r;
                }
                int e = errno(cap);
                if (e != Errno.EINTR) {
                    return -e;
                }
            }
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** write(2) from host memory at {@code addr}: bytes written or -errno. */
    public static long write(int fd, long addr, long len) {
        MemorySegment cap = capture();
        try {
            while (true) {
                long r = (long) WRITE.invokeExact(cap, fd, addr, len);
                if (r >= 0) {
                    return r;
                }
                int e = errno(cap);
                if (e != Errno.EINTR) {
                    return -e;
                }
            }
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** readv(2) with an array of {@code iovCnt} 16-byte iovecs at {@code iovAddr}: bytes or -errno. */
    public static long readv(int fd, long iovAddr, int iovCnt) {
        MemorySegment cap = capture();
        try {
            while (true) {
                long r = (long) READV.invokeExact(cap, fd, iovAddr, iovCnt);
                if (r >= 0) {
                    return r;
                }
                int e = errno(cap);
                if (e != Errno.EINTR) {
                    return -e;
                }
            }
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** writev(2) with an array of {@code iovCnt} 16-byte iovecs at {@code iovAddr}: bytes or -errno. */
    public static long writev(int fd, long iovAddr, int iovCnt) {
        MemorySegment cap = capture();
        try {
            while (true) {
                long r = (long) WRITEV.invokeExact(cap, fd, iovAddr, iovCnt);
                if (r >= 0) {
                    return r;
                }
                int e = errno(cap);
                if (e != Errno.EINTR) {
                    return -e;
                }
            }
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** Size of one iovec; write base (u64) at +0 and length (u64) at +8. */
    public static final int IOVEC_BYTES = (int) IOVEC_SIZE;

    /** Sets or clears O_NONBLOCK. */
    public static void setNonBlocking(int fd, boolean nonBlocking) throws NativeException {
        MemorySegment cap = capture();
        try {
            int flags = (int) FCNTL.invokeExact(cap, fd, F_GETFL, 0);
            if (flags < 0) {
                throw new NativeException("fcntl(" + fd + ", F_GETFL)", errno(cap));
            }
            int wanted = nonBlocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
            if (wanted != flags) {
                int r = (int) FCNTL.invokeExact(cap, fd, F_SETFL, wanted);
                if (r < 0) {
                    throw new NativeException("fcntl(" + fd + ", F_SETFL)", errno(cap));
                }
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** True when O_NONBLOCK is set on {@code fd}. */
    public static boolean isNonBlocking(int fd) throws NativeException {
        MemorySegment cap = capture();
        try {
            int flags = (int) FCNTL.invokeExact(cap, fd, F_GETFL, 0);
            if (flags < 0) {
                throw new NativeException("fcntl(" + fd + ", F_GETFL)", errno(cap));
            }
            return (flags & O_NONBLOCK) != 0;
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    // ---- eventfd ---------------------------------------------------------------------------

    /** eventfd(2); {@link #EFD_CLOEXEC} is always added. */
    public static Fd eventfd(int initval, int flags) throws NativeException {
        MemorySegment cap = capture();
        try {
            int r = (int) EVENTFD.invokeExact(cap, initval, flags | EFD_CLOEXEC);
            if (r < 0) {
                throw new NativeException("eventfd", errno(cap));
            }
            return Fd.adopt(r);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** Adds {@code value} to an eventfd counter: 8 or -errno (-EAGAIN when it would overflow). */
    public static int eventfdWrite(int fd, long value) {
        MemorySegment buf = SCRATCH.get().u64;
        buf.set(JAVA_LONG, 0, value);
        return (int) write(fd, buf.address(), 8);
    }

    /** Adds 1 to an eventfd counter: 8 or -errno. */
    public static int eventfdSignal(int fd) {
        return eventfdWrite(fd, 1);
    }

    /**
     * Reads and resets an eventfd counter: the value (positive), or -errno; -EAGAIN when the
     * counter is zero on a non-blocking eventfd.
     */
    public static long eventfdDrain(int fd) {
        MemorySegment buf = SCRATCH.get().u64;
        long r = read(fd, buf.address(), 8);
        if (r < 0) {
            return r;
        }
        if (r != 8) {
            return -Errno.EIO;
        }
        long v = buf.get(JAVA_LONG, 0);
        return v < 0 ? Long.MAX_VALUE : v;
    }

    // ---- epoll -----------------------------------------------------------------------------

    /** epoll_create1(EPOLL_CLOEXEC). */
    public static Fd epollCreate() throws NativeException {
        MemorySegment cap = capture();
        try {
            int r = (int) EPOLL_CREATE1.invokeExact(cap, O_CLOEXEC);
            if (r < 0) {
                throw new NativeException("epoll_create1", errno(cap));
            }
            return Fd.adopt(r);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** epoll_ctl(2) with {@code events} and the 64-bit user {@code data}: 0 or -errno. */
    public static int epollCtl(int epfd, int op, int fd, int events, long data) {
        Scratch s = SCRATCH.get();
        MemorySegment ev = s.event;
        ev.set(JAVA_INT_UNALIGNED, 0, events);
        ev.set(JAVA_LONG_UNALIGNED, 4, data);
        MemorySegment cap = s.capture;
        try {
            int r = (int) EPOLL_CTL.invokeExact(cap, epfd, op, fd, ev.address());
            return r < 0 ? -errno(cap) : r;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /**
     * epoll_wait(2) into {@code events} (packed 12-byte entries, see {@link #allocateEpollEvents}):
     * number of ready entries, 0 on timeout, or -errno (-EINVAL when {@code max} does not fit).
     */
    public static int epollWait(int epfd, MemorySegment events, int max, int timeoutMs) {
        if (max <= 0 || (long) max * EPOLL_EVENT_SIZE > events.byteSize() || !events.isNative()) {
            return -Errno.EINVAL;
        }
        MemorySegment cap = capture();
        long addr = events.address();
        try {
            while (true) {
                int r = (int) EPOLL_WAIT.invokeExact(cap, epfd, addr, max, timeoutMs);
                if (r >= 0) {
                    return r;
                }
                int e = errno(cap);
                if (e != Errno.EINTR) {
                    return -e;
                }
            }
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** A native array for {@code count} packed epoll events. */
    public static MemorySegment allocateEpollEvents(Arena arena, int count) {
        return arena.allocate((long) EPOLL_EVENT_SIZE * count, 8);
    }

    /** The event mask of entry {@code i}. */
    public static int epollEventMask(MemorySegment events, int i) {
        return events.get(JAVA_INT_UNALIGNED, (long) i * EPOLL_EVENT_SIZE);
    }

    /** The 64-bit user data of entry {@code i}. */
    public static long epollEventData(MemorySegment events, int i) {
        return events.get(JAVA_LONG_UNALIGNED, (long) i * EPOLL_EVENT_SIZE + 4);
    }

    // ---- AF_UNIX sockets -------------------------------------------------------------------

    private static MemorySegment sockaddrUn(Arena arena, Path path, String call) throws NativeException {
        byte[] bytes = path.toString().getBytes(StandardCharsets.UTF_8);
        if (bytes.length == 0 || bytes.length >= SUN_PATH_MAX) {
            throw new NativeException(call + "(" + path + ")", Errno.ENAMETOOLONG);
        }
        MemorySegment sa = arena.allocate(SOCKADDR_UN_SIZE, 8);
        sa.set(JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(bytes, 0, sa, ValueLayout.JAVA_BYTE, 2, bytes.length);
        return sa;
    }

    private static int socket(MemorySegment cap, int extraFlags) throws Throwable {
        int fd = (int) SOCKET.invokeExact(cap, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | extraFlags, 0);
        if (fd < 0) {
            throw new NativeException("socket(AF_UNIX)", errno(cap));
        }
        return fd;
    }

    /** A listening AF_UNIX stream socket bound at {@code path}, file mode 0600. */
    public static Fd unixListen(Path path, int backlog) throws NativeException {
        MemorySegment cap = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = sockaddrUn(arena, path, "bind");
            Fd fd = Fd.adopt(socket(cap, 0));
            try {
                if ((int) BIND.invokeExact(cap, fd.fd(), sa, SOCKADDR_UN_SIZE) < 0) {
                    throw new NativeException("bind(" + path + ")", errno(cap));
                }
                MemorySegment cpath = arena.allocateFrom(path.toString());
                if ((int) CHMOD.invokeExact(cap, cpath, 0600) < 0) {
                    throw new NativeException("chmod(" + path + ")", errno(cap));
                }
                if ((int) LISTEN.invokeExact(cap, fd.fd(), backlog) < 0) {
                    throw new NativeException("listen(" + path + ")", errno(cap));
                }
                return fd;
            } catch (Throwable t) {
                fd.closeQuietly();
                throw t;
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** accept4(2) with SOCK_CLOEXEC (and SOCK_NONBLOCK if asked): the new descriptor or -errno. */
    public static int accept(int listenFd, boolean nonBlocking) {
        MemorySegment cap = capture();
        int flags = SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0);
        try {
            while (true) {
                int r = (int) ACCEPT4.invokeExact(cap, listenFd, 0L, 0L, flags);
                if (r >= 0) {
                    return r;
                }
                int e = errno(cap);
                if (e != Errno.EINTR) {
                    return -e;
                }
            }
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** A blocking AF_UNIX stream socket connected to {@code path}. */
    public static Fd unixConnect(Path path) throws NativeException {
        MemorySegment cap = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = sockaddrUn(arena, path, "connect");
            Fd fd = Fd.adopt(socket(cap, 0));
            try {
                while (true) {
                    if ((int) CONNECT.invokeExact(cap, fd.fd(), sa, SOCKADDR_UN_SIZE) == 0) {
                        return fd;
                    }
                    int e = errno(cap);
                    if (e != Errno.EINTR) {
                        throw new NativeException("connect(" + path + ")", e);
                    }
                }
            } catch (Throwable t) {
                fd.closeQuietly();
                throw t;
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** A connected pair of AF_UNIX stream sockets (close-on-exec). */
    public static Fd[] socketPair() throws NativeException {
        MemorySegment cap = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(JAVA_INT, 2);
            if ((int) SOCKETPAIR.invokeExact(cap, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
                throw new NativeException("socketpair(AF_UNIX)", errno(cap));
            }
            return new Fd[] {Fd.adopt(fds.getAtIndex(JAVA_INT, 0)), Fd.adopt(fds.getAtIndex(JAVA_INT, 1))};
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** shutdown(2) with {@link #SHUT_RD}, {@link #SHUT_WR} or {@link #SHUT_RDWR}: 0 or -errno. */
    public static int shutdown(int fd, int how) {
        MemorySegment cap = capture();
        try {
            int r = (int) SHUTDOWN.invokeExact(cap, fd, how);
            return r < 0 ? -errno(cap) : r;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /**
     * recvmsg(2) of up to {@code len} bytes into {@code buf} with SCM_RIGHTS descriptors
     * (received close-on-exec). {@code fdsOut} is filled with the received descriptors, the rest
     * with -1; the caller owns what it gets. Returns bytes read (0 = EOF) or -errno. When the
     * control data was truncated (MSG_CTRUNC) or more descriptors arrived than {@code fdsOut}
     * holds, every received descriptor is closed, {@code fdsOut} is all -1 and the result is
     * {@code -EMSGSIZE}; the data bytes of that message are consumed all the same, so the
     * caller should treat the stream as broken.
     */
    public static long recvWithFds(int fd, MemorySegment buf, long len, int[] fdsOut) {
        java.util.Arrays.fill(fdsOut, -1);
        if (len < 0 || len > buf.byteSize() || !buf.isNative()) {
            return -Errno.EINVAL;
        }
        Scratch s = SCRATCH.get();
        MemorySegment msg = s.msghdr;
        MemorySegment iov = s.iovec;
        MemorySegment ctl = s.control;
        msg.fill((byte) 0);
        ctl.fill((byte) 0);
        iov.set(JAVA_LONG, 0, buf.address());
        iov.set(JAVA_LONG, 8, len);
        msg.set(JAVA_LONG, MSG_IOV, iov.address());
        msg.set(JAVA_LONG, MSG_IOVLEN, 1);
        msg.set(JAVA_LONG, MSG_CONTROL, ctl.address());
        msg.set(JAVA_LONG, MSG_CONTROLLEN, ctl.byteSize());
        MemorySegment cap = s.capture;
        long r;
        try {
            while (true) {
                r = (long) RECVMSG.invokeExact(cap, fd, msg.address(), MSG_CMSG_CLOEXEC);
                if (r >= 0) {
                    break;
                }
                int e = errno(cap);
                if (e != Errno.EINTR) {
                    return -e;
                }
                msg.set(JAVA_LONG, MSG_CONTROLLEN, ctl.byteSize());
            }
        } catch (Throwable t) {
            throw linkageBug(t);
        }
        boolean truncated = (msg.get(JAVA_INT, MSG_FLAGS) & MSG_CTRUNC) != 0;
        long ctlLen = Math.min(msg.get(JAVA_LONG, MSG_CONTROLLEN), ctl.byteSize());
        int n = 0;
        boolean overflow = false;
        long off = 0;
        while (off + CMSG_HDR <= ctlLen) {
            long cmsgLen = ctl.get(JAVA_LONG, off);
            if (cmsgLen < CMSG_HDR || off + cmsgLen > ctlLen) {
                break;
            }
            if (ctl.get(JAVA_INT, off + 8) == SOL_SOCKET && ctl.get(JAVA_INT, off + 12) == SCM_RIGHTS) {
                int count = (int) ((cmsgLen - CMSG_HDR) / 4);
                for (int i = 0; i < count; i++) {
                    int got = ctl.get(JAVA_INT, off + CMSG_HDR + 4L * i);
                    if (n < fdsOut.length) {
                        fdsOut[n++] = got;
                    } else {
                        overflow = true;
                        close(got);
                    }
                }
            }
            off += (cmsgLen + 7) & ~7L;
        }
        if (truncated || overflow) {
            for (int i = 0; i < n; i++) {
                close(fdsOut[i]);
                fdsOut[i] = -1;
            }
            return -Errno.EMSGSIZE;
        }
        return r;
    }

    /**
     * sendmsg(2) of {@code len} bytes from {@code buf} with the descriptors {@code fds} as
     * SCM_RIGHTS (which needs at least one data byte). MSG_NOSIGNAL is set. Bytes sent or -errno.
     */
    public static long sendWithFds(int fd, MemorySegment buf, long len, int... fds) {
        if (len < 0 || len > buf.byteSize() || !buf.isNative() || fds.length > MAX_RECV_FDS
                || (fds.length > 0 && len == 0)) {
            return -Errno.EINVAL;
        }
        Scratch s = SCRATCH.get();
        MemorySegment msg = s.msghdr;
        MemorySegment iov = s.iovec;
        MemorySegment ctl = s.control;
        msg.fill((byte) 0);
        iov.set(JAVA_LONG, 0, buf.address());
        iov.set(JAVA_LONG, 8, len);
        msg.set(JAVA_LONG, MSG_IOV, iov.address());
        msg.set(JAVA_LONG, MSG_IOVLEN, 1);
        if (fds.length > 0) {
            long dataLen = 4L * fds.length;
            ctl.set(JAVA_LONG, 0, CMSG_HDR + dataLen);
            ctl.set(JAVA_INT, 8, SOL_SOCKET);
            ctl.set(JAVA_INT, 12, SCM_RIGHTS);
            for (int i = 0; i < fds.length; i++) {
                ctl.set(JAVA_INT, CMSG_HDR + 4L * i, fds[i]);
            }
            msg.set(JAVA_LONG, MSG_CONTROL, ctl.address());
            msg.set(JAVA_LONG, MSG_CONTROLLEN, CMSG_HDR + ((dataLen + 7) & ~7L));
        }
        MemorySegment cap = s.capture;
        try {
            while (true) {
                long r = (long) SENDMSG.invokeExact(cap, fd, msg.address(), MSG_NOSIGNAL);
                if (r >= 0) {
                    return r;
                }
                int e = errno(cap);
                if (e != Errno.EINTR) {
                    return -e;
                }
            }
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    // ---- files, pipes, memory --------------------------------------------------------------

    /** open(2) with {@code flags} ({@link #O_CLOEXEC} always added) and {@code mode} for O_CREAT. */
    public static Fd open(Path path, int flags, int mode) throws NativeException {
        MemorySegment cap = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cpath = arena.allocateFrom(path.toString());
            while (true) {
                int r = (int) OPEN.invokeExact(cap, cpath, flags | O_CLOEXEC, mode);
                if (r >= 0) {
                    return Fd.adopt(r);
                }
                int e = errno(cap);
                if (e != Errno.EINTR) {
                    throw new NativeException("open(" + path + ")", e);
                }
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** pipe2(O_CLOEXEC): {@code [read end, write end]}. */
    public static Fd[] pipe() throws NativeException {
        MemorySegment cap = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(JAVA_INT, 2);
            if ((int) PIPE2.invokeExact(cap, fds, O_CLOEXEC) < 0) {
                throw new NativeException("pipe2", errno(cap));
            }
            return new Fd[] {Fd.adopt(fds.getAtIndex(JAVA_INT, 0)), Fd.adopt(fds.getAtIndex(JAVA_INT, 1))};
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING); size 0 until {@link #ftruncate}. */
    public static Fd memfdCreate(String name) throws NativeException {
        MemorySegment cap = capture();
        try (Arena arena = Arena.ofConfined()) {
            int r = (int) MEMFD_CREATE.invokeExact(cap, arena.allocateFrom(name), MFD_CLOEXEC | MFD_ALLOW_SEALING);
            if (r < 0) {
                throw new NativeException("memfd_create(" + name + ")", errno(cap));
            }
            return Fd.adopt(r);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** ftruncate(2). */
    public static void ftruncate(int fd, long len) throws NativeException {
        MemorySegment cap = capture();
        try {
            while (true) {
                if ((int) FTRUNCATE.invokeExact(cap, fd, len) == 0) {
                    return;
                }
                int e = errno(cap);
                if (e != Errno.EINTR) {
                    throw new NativeException("ftruncate(" + fd + ", " + len + ")", e);
                }
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    public static final int F_SEAL_SEAL = 0x1;
    public static final int F_SEAL_SHRINK = 0x2;
    public static final int F_SEAL_GROW = 0x4;
    public static final int F_SEAL_WRITE = 0x8;

    /**
     * The memfd seals of {@code fd} (F_GET_SEALS), or -errno (-EINVAL for files that cannot be
     * sealed). A mapping of a file that can still shrink may fault (SIGBUS) after a truncate.
     */
    public static int fileSeals(int fd) {
        MemorySegment cap = capture();
        try {
            int r = (int) FCNTL.invokeExact(cap, fd, F_GET_SEALS, 0);
            return r < 0 ? -errno(cap) : r;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** Adds memfd seals (F_ADD_SEALS). */
    public static void addSeals(int fd, int seals) throws NativeException {
        MemorySegment cap = capture();
        try {
            if ((int) FCNTL.invokeExact(cap, fd, F_ADD_SEALS, seals) < 0) {
                throw new NativeException("fcntl(" + fd + ", F_ADD_SEALS)", errno(cap));
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** Size in bytes of the file behind {@code fd} (fstat st_size); use before mapping it. */
    public static long fileSize(int fd) throws NativeException {
        MemorySegment cap = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(STAT_SIZE, 8);
            if ((int) FSTAT.invokeExact(cap, fd, st) < 0) {
                throw new NativeException("fstat(" + fd + ")", errno(cap));
            }
            return st.get(JAVA_LONG, STAT_ST_SIZE);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /**
     * A MAP_SHARED read/write mapping of {@code len} bytes of {@code fd} from {@code offset}
     * (page aligned), unmapped when {@code arena} closes. Use one arena per mapping. The
     * descriptor may be closed once this returns.
     */
    public static MemorySegment mmapShared(int fd, long offset, long len, Arena arena) throws NativeException {
        if (len <= 0 || offset < 0) {
            throw new NativeException("mmap(fd " + fd + ", offset " + offset + ", len " + len + ")", Errno.EINVAL);
        }
        MemorySegment cap = capture();
        long addr;
        try {
            addr = (long) MMAP.invokeExact(cap, 0L, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
            if (addr == -1L) {
                throw new NativeException("mmap(fd " + fd + ", offset " + offset + ", len " + len + ")", errno(cap));
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
        try {
            final long a = addr;
            return MemorySegment.ofAddress(a).reinterpret(len, arena, ignored -> munmap(a, len));
        } catch (RuntimeException e) {
            munmap(addr, len); // arena already closed or not ours: do not leak the mapping
            throw e;
        }
    }

    private static int munmap(long addr, long len) {
        MemorySegment cap = capture();
        try {
            int r = (int) MUNMAP.invokeExact(cap, addr, len);
            return r < 0 ? -errno(cap) : 0;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    // ---- terminals -------------------------------------------------------------------------

    /** isatty(3). */
    public static boolean isatty(int fd) {
        MemorySegment cap = capture();
        try {
            return (int) ISATTY.invokeExact(cap, fd) == 1;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /**
     * The terminal size (TIOCGWINSZ) packed as {@code cols << 16 | rows} (each clamped to
     * 0..0x7fff), or -errno (-ENOTTY for a non-terminal).
     */
    public static int windowSize(int fd) {
        MemorySegment cap = capture();
        MemorySegment ws = SCRATCH.get().u64;
        try {
            int r = (int) IOCTL_PTR.invokeExact(cap, fd, TIOCGWINSZ, ws);
            if (r < 0) {
                return -errno(cap);
            }
        } catch (Throwable t) {
            throw linkageBug(t);
        }
        int rows = Math.min(Short.toUnsignedInt(ws.get(JAVA_SHORT, 0)), 0x7fff);
        int cols = Math.min(Short.toUnsignedInt(ws.get(JAVA_SHORT, 2)), 0x7fff);
        return cols << 16 | rows;
    }

    /** Columns from a packed {@link #windowSize} value. */
    public static int windowCols(int packed) {
        return packed >>> 16;
    }

    /** Rows from a packed {@link #windowSize} value. */
    public static int windowRows(int packed) {
        return packed & 0xffff;
    }

    /** Sets the terminal size (TIOCSWINSZ), e.g. on a PTY master. */
    public static void setWindowSize(int fd, int cols, int rows) throws NativeException {
        MemorySegment cap = capture();
        MemorySegment ws = SCRATCH.get().u64;
        ws.set(JAVA_SHORT, 0, (short) rows);
        ws.set(JAVA_SHORT, 2, (short) cols);
        ws.set(JAVA_SHORT, 4, (short) 0);
        ws.set(JAVA_SHORT, 6, (short) 0);
        try {
            if ((int) IOCTL_PTR.invokeExact(cap, fd, TIOCSWINSZ, ws) < 0) {
                throw new NativeException("ioctl(" + fd + ", TIOCSWINSZ)", errno(cap));
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** The terminal attributes of {@code fd} (an opaque {@code struct termios} copy). */
    public static byte[] tcgetattr(int fd) throws NativeException {
        MemorySegment cap = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment t = arena.allocate(TERMIOS_SIZE, 8);
            if ((int) TCGETATTR.invokeExact(cap, fd, t) < 0) {
                throw new NativeException("tcgetattr(" + fd + ")", errno(cap));
            }
            return t.toArray(ValueLayout.JAVA_BYTE);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** Restores attributes saved by {@link #tcgetattr} or {@link #enterRawMode} (TCSANOW). */
    public static void tcsetattr(int fd, byte[] saved) throws NativeException {
        if (saved.length != TERMIOS_SIZE) {
            throw new IllegalArgumentException("not a saved termios: " + saved.length + " bytes");
        }
        MemorySegment cap = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment t = arena.allocate(TERMIOS_SIZE, 8);
            MemorySegment.copy(saved, 0, t, ValueLayout.JAVA_BYTE, 0, TERMIOS_SIZE);
            if ((int) TCSETATTR.invokeExact(cap, fd, TCSANOW, t) < 0) {
                throw new NativeException("tcsetattr(" + fd + ")", errno(cap));
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** Puts the terminal into raw mode (cfmakeraw) and returns the previous attributes. */
    public static byte[] enterRawMode(int fd) throws NativeException {
        byte[] saved = tcgetattr(fd);
        MemorySegment cap = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment t = arena.allocate(TERMIOS_SIZE, 8);
            MemorySegment.copy(saved, 0, t, ValueLayout.JAVA_BYTE, 0, TERMIOS_SIZE);
            CFMAKERAW.invokeExact(t);
            if ((int) TCSETATTR.invokeExact(cap, fd, TCSANOW, t) < 0) {
                throw new NativeException("tcsetattr(" + fd + ", raw)", errno(cap));
            }
            return saved;
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** A pseudo-terminal: the master end (owned) and the slave device path. */
    public record Pty(Fd master, String slavePath) {
    }

    /** posix_openpt(O_RDWR|O_NOCTTY|O_CLOEXEC), grantpt, unlockpt, ptsname_r. */
    public static Pty openPty() throws NativeException {
        MemorySegment cap = capture();
        try (Arena arena = Arena.ofConfined()) {
            int m = (int) POSIX_OPENPT.invokeExact(cap, O_RDWR | O_NOCTTY | O_CLOEXEC);
            if (m < 0) {
                throw new NativeException("posix_openpt", errno(cap));
            }
            Fd master = Fd.adopt(m);
            try {
                if ((int) GRANTPT.invokeExact(cap, m) < 0) {
                    throw new NativeException("grantpt(" + m + ")", errno(cap));
                }
                if ((int) UNLOCKPT.invokeExact(cap, m) < 0) {
                    throw new NativeException("unlockpt(" + m + ")", errno(cap));
                }
                MemorySegment name = arena.allocate(128);
                int r = (int) PTSNAME_R.invokeExact(cap, m, name, 128L);
                if (r != 0) {
                    throw new NativeException("ptsname_r(" + m + ")", r);
                }
                return new Pty(master, name.getString(0));
            } catch (Throwable t) {
                master.closeQuietly();
                throw t;
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }
}
