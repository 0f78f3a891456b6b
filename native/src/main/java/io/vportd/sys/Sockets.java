package io.vportd.sys;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;


/**
 * Socket calls common to every address family: socket, bind, listen, connect, accept4,
 * shutdown. {@link UnixSockets} and {@link Inet} build their listeners and connects on these.
 */
public final class Sockets {

    private Sockets() {
    }

    public static final int SHUT_RD = 0;
    public static final int SHUT_WR = 1;
    public static final int SHUT_RDWR = 2;

    static final int SOCK_STREAM = 1;
    static final int SOCK_DGRAM = 2;
    static final int SOCK_NONBLOCK = 04000;
    static final int SOCK_CLOEXEC = 02000000;
    static final int SOL_SOCKET = 1;

    private static final class Socket {
        static final MethodHandle H =
                Libc.linkInt("socket");
    }
    private static final class Bind {
        static final MethodHandle H =
                Libc.linkInt("bind");
    }
    private static final class Listen {
        static final MethodHandle H =
                Libc.linkInt("listen");
    }
    private static final class Connect {
        static final MethodHandle H =
                Libc.linkInt("connect");
    }
    private static final class Accept4 {
        static final MethodHandle H =
                Libc.linkInt("accept4");
    }
    private static final class Shutdown {
        static final MethodHandle H =
                Libc.linkInt("shutdown");
    }

    /** A close-on-exec stream socket of {@code family} ({@code familyName} for the message). */
    static Fd stream(int family, String familyName, int extraFlags) throws NativeException {
        return open(family, SOCK_STREAM, familyName, extraFlags);
    }

    /** A close-on-exec socket of {@code family} and {@code type} ({@link #SOCK_STREAM}, {@link #SOCK_DGRAM}). */
    static Fd open(int family, int type, String familyName, int extraFlags) throws NativeException {
        int t = type | SOCK_CLOEXEC | extraFlags;
        return Fd.adopt((int) Libc.check("socket(" + familyName + ")", cap -> Libc.call(Socket.H, cap, family, t, 0)));
    }

    /** bind(2) only. */
    static void bind(Fd fd, MemorySegment address, String where) throws NativeException {
        int s = fd.fd();
        int len = (int) address.byteSize();
        Libc.check("bind(" + where + ")", cap -> Libc.call(Bind.H, cap, s, address.address(), len));
    }

    /** listen(2) only. */
    static void listen(Fd fd, int backlog, String where) throws NativeException {
        int s = fd.fd();
        Libc.check("listen(" + where + ")", cap -> Libc.call(Listen.H, cap, s, backlog));
    }

    /** connect(2), EINTR retried. */
    static void connect(Fd fd, MemorySegment address, String where) throws NativeException {
        int s = fd.fd();
        int len = (int) address.byteSize();
        Libc.check("connect(" + where + ")", cap -> Libc.call(Connect.H, cap, s, address.address(), len));
    }

    /** accept4(2) with SOCK_CLOEXEC (and SOCK_NONBLOCK if asked): the new descriptor or -errno. */
    public static int accept(int listenFd, boolean nonBlocking) {
        int flags = SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0);
        int r;
        do {
            r = (int) Libc.once(cap -> Libc.call(Accept4.H, cap, listenFd, 0L, 0L, flags));
        } while (r == -Errno.EINTR);
        return r;
    }

    /** shutdown(2) with {@link #SHUT_RD}, {@link #SHUT_WR} or {@link #SHUT_RDWR}: 0 or -errno. */
    public static int shutdown(int fd, int how) {
        return (int) Libc.once(cap -> Libc.call(Shutdown.H, cap, fd, how));
    }
}
