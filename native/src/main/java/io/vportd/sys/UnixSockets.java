package io.vportd.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * AF_UNIX stream sockets: listeners (mode 0600), blocking and non-blocking connects, socket
 * pairs, and messages carrying descriptors (SCM_RIGHTS); AF_UNIX datagram sockets bound or
 * connected to a path or an abstract name ({@link #bindDatagram}, {@link #connectDatagram}), on
 * which the same two message calls work. {@link #recvWithFds} and
 * {@link #sendWithFds} never throw and never allocate: they return bytes or {@code -errno}.
 */
public final class UnixSockets {

    private UnixSockets() {
    }

    /** Most descriptors {@link #recvWithFds} accepts in one message. */
    public static final int MAX_RECV_FDS = 64;

    private static final int AF_UNIX = 1;
    private static final int SCM_RIGHTS = 1;
    private static final int MSG_CTRUNC = 0x8;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    private static final int SUN_PATH_MAX = 108;
    private static final int SOCKADDR_UN_SIZE = 110;

    // struct msghdr (x86_64)
    private static final long MSG_IOV = 16;
    private static final long MSG_IOVLEN = 24;
    private static final long MSG_CONTROL = 32;
    private static final long MSG_CONTROLLEN = 40;
    private static final long MSG_FLAGS = 48;
    static final long MSGHDR_SIZE = 56;
    static final long CMSG_HDR = 16;

    private static final class Socketpair {
        static final MethodHandle H =
                Libc.linkInt("socketpair");
    }
    private static final class Chmod {
        static final MethodHandle H =
                Libc.linkInt("chmod");
    }
    private static final class Recvmsg {
        static final MethodHandle H =
                Libc.asFdAddrLen( Libc.link("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT)));
    }
    private static final class Sendmsg {
        static final MethodHandle H =
                Libc.asFdAddrLen( Libc.link("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT)));
    }

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

    /**
     * sockaddr_un of an address as {@code $NOTIFY_SOCKET} spells it: a file system path, or
     * {@code @name} for the abstract name {@code name} (a leading NUL, no terminator; the length
     * passed to the kernel is exact, so the segment's size is the address length).
     */
    private static MemorySegment sockaddrUn(Arena arena, String address, String call) throws NativeException {
        if (!address.startsWith("@")) {
            return sockaddrUn(arena, Path.of(address), call);
        }
        byte[] name = address.substring(1).getBytes(StandardCharsets.UTF_8);
        if (name.length == 0 || name.length >= SUN_PATH_MAX) {
            throw new NativeException(call + "(" + address + ")", Errno.ENAMETOOLONG);
        }
        MemorySegment sa = arena.allocate(2 + 1 + name.length, 8);
        sa.set(JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(name, 0, sa, ValueLayout.JAVA_BYTE, 3, name.length);
        return sa;
    }

    /**
     * An AF_UNIX datagram socket (close-on-exec) bound at {@code address}: a path (file mode
     * 0600) or {@code @name} for an abstract name. Read it with {@link #recvWithFds}.
     */
    public static Fd bindDatagram(String address) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = sockaddrUn(arena, address, "bind");
            Fd fd = Sockets.open(AF_UNIX, Sockets.SOCK_DGRAM, "AF_UNIX", 0);
            try {
                Sockets.bind(fd, sa, address);
                if (!address.startsWith("@")) {
                    MemorySegment cpath = arena.allocateFrom(address);
                    Libc.check("chmod(" + address + ")", cap -> Libc.call(Chmod.H, cap, cpath.address(), 0600));
                }
                return fd;
            } catch (NativeException | RuntimeException e) {
                fd.closeQuietly();
                throw e;
            }
        }
    }

    /**
     * An AF_UNIX datagram socket (close-on-exec) connected to {@code address}: a path or
     * {@code @name} for an abstract name. Send on it with {@link #sendWithFds}.
     */
    public static Fd connectDatagram(String address) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = sockaddrUn(arena, address, "connect");
            Fd fd = Sockets.open(AF_UNIX, Sockets.SOCK_DGRAM, "AF_UNIX", 0);
            try {
                Sockets.connect(fd, sa, address);
                return fd;
            } catch (NativeException | RuntimeException e) {
                fd.closeQuietly();
                throw e;
            }
        }
    }

    /** A listening AF_UNIX stream socket bound at {@code path}, file mode 0600. */
    public static Fd listen(Path path, int backlog) throws NativeException {
        return listen(path, backlog, 0);
    }

    /**
     * A listening, non-blocking AF_UNIX stream socket bound at {@code path}, file mode 0600
     * (non-blocking from its creation: no fcntl to link and call at start-up).
     */
    public static Fd listenNonBlocking(Path path, int backlog) throws NativeException {
        return listen(path, backlog, Sockets.SOCK_NONBLOCK);
    }

    private static Fd listen(Path path, int backlog, int extraFlags) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = sockaddrUn(arena, path, "bind");
            Fd fd = Sockets.stream(AF_UNIX, "AF_UNIX", extraFlags);
            try {
                Sockets.bind(fd, sa, path.toString());
                MemorySegment cpath = arena.allocateFrom(path.toString());
                Libc.check("chmod(" + path + ")", cap -> Libc.call(Chmod.H, cap, cpath.address(), 0600));
                Sockets.listen(fd, backlog, path.toString());
                return fd;
            } catch (NativeException | RuntimeException e) {
                fd.closeQuietly();
                throw e;
            }
        }
    }

    /** A blocking AF_UNIX stream socket connected to {@code path}. */
    public static Fd connect(Path path) throws NativeException {
        return connect(path, 0);
    }

    /**
     * A non-blocking, close-on-exec AF_UNIX stream socket connected to {@code path}. A Unix
     * socket connect completes at once or fails (ENOENT, ECONNREFUSED, EAGAIN when the server's
     * backlog is full): it never leaves the caller waiting.
     */
    public static Fd connectNonBlocking(Path path) throws NativeException {
        return connect(path, Sockets.SOCK_NONBLOCK);
    }

    private static Fd connect(Path path, int extraFlags) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = sockaddrUn(arena, path, "connect");
            Fd fd = Sockets.stream(AF_UNIX, "AF_UNIX", extraFlags);
            try {
                Sockets.connect(fd, sa, path.toString());
                return fd;
            } catch (NativeException | RuntimeException e) {
                fd.closeQuietly();
                throw e;
            }
        }
    }

    /**
     * A blocking AF_UNIX datagram socket connected to {@code path} (the systemd journal's native
     * socket, for one); {@link Io#write} then sends one datagram. Fails with ENOENT or
     * ECONNREFUSED when nothing is bound there.
     */
    public static Fd connectDatagram(Path path) throws NativeException {
        return connectDatagram(path.toString());
    }

    /** A blocking AF_UNIX datagram socket bound at {@code path} (0600); {@link Io#read} receives one datagram. */
    public static Fd bindDatagram(Path path) throws NativeException {
        return bindDatagram(path.toString());
    }

    /** A connected pair of AF_UNIX stream sockets (close-on-exec). */
    public static Fd[] pair() throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(JAVA_INT, 2);
            Libc.check("socketpair(AF_UNIX)",
                    cap -> Libc.call(Socketpair.H, cap, AF_UNIX, Sockets.SOCK_STREAM | Sockets.SOCK_CLOEXEC, 0, fds.address()));
            return new Fd[] {Fd.adopt(fds.getAtIndex(JAVA_INT, 0)), Fd.adopt(fds.getAtIndex(JAVA_INT, 1))};
        }
    }

    /** Points the scratch msghdr at one iovec of {@code len} bytes of {@code buf}; clears the rest. */
    private static MemorySegment message(Libc.Scratch s, MemorySegment buf, long len) {
        MemorySegment msg = s.msghdr;
        MemorySegment iov = s.iovec;
        msg.fill((byte) 0);
        iov.set(JAVA_LONG, 0, buf.address());
        iov.set(JAVA_LONG, 8, len);
        msg.set(JAVA_LONG, MSG_IOV, iov.address());
        msg.set(JAVA_LONG, MSG_IOVLEN, 1);
        return msg;
    }

    /** recvmsg and sendmsg once each on descriptor -1 (EBADF at once): see {@link Io#primeInvokers}. */
    static void callsOnNoDescriptor() {
        Libc.retry(Recvmsg.H, -1, 0, 0);
        Libc.retry(Sendmsg.H, -1, 0, 0);
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
        Libc.Scratch s = Libc.scratch();
        MemorySegment msg = message(s, buf, len);
        MemorySegment ctl = s.control;
        ctl.fill((byte) 0);
        msg.set(JAVA_LONG, MSG_CONTROL, ctl.address());
        msg.set(JAVA_LONG, MSG_CONTROLLEN, ctl.byteSize());
        // an interrupted recvmsg leaves the msghdr as it was, so the retry can reuse it
        long r = Libc.retry(Recvmsg.H, fd, msg.address(), MSG_CMSG_CLOEXEC);
        if (r < 0) {
            return r;
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
            if (ctl.get(JAVA_INT, off + 8) == Sockets.SOL_SOCKET && ctl.get(JAVA_INT, off + 12) == SCM_RIGHTS) {
                int count = (int) ((cmsgLen - CMSG_HDR) / 4);
                for (int i = 0; i < count; i++) {
                    int got = ctl.get(JAVA_INT, off + CMSG_HDR + 4L * i);
                    if (n < fdsOut.length) {
                        fdsOut[n++] = got;
                    } else {
                        overflow = true;
                        Io.close(got);
                    }
                }
            }
            off += (cmsgLen + 7) & ~7L;
        }
        if (truncated || overflow) {
            for (int i = 0; i < n; i++) {
                Io.close(fdsOut[i]);
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
        Libc.Scratch s = Libc.scratch();
        MemorySegment msg = message(s, buf, len);
        MemorySegment ctl = s.control;
        if (fds.length > 0) {
            long dataLen = 4L * fds.length;
            ctl.set(JAVA_LONG, 0, CMSG_HDR + dataLen);
            ctl.set(JAVA_INT, 8, Sockets.SOL_SOCKET);
            ctl.set(JAVA_INT, 12, SCM_RIGHTS);
            for (int i = 0; i < fds.length; i++) {
                ctl.set(JAVA_INT, CMSG_HDR + 4L * i, fds[i]);
            }
            msg.set(JAVA_LONG, MSG_CONTROL, ctl.address());
            msg.set(JAVA_LONG, MSG_CONTROLLEN, CMSG_HDR + ((dataLen + 7) & ~7L));
        }
        return Libc.retry(Sendmsg.H, fd, msg.address(), MSG_NOSIGNAL);
    }
}
