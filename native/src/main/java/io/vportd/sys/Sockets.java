package io.vportd.sys;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

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
                Libc.link("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    }
    private static final class Bind {
        static final MethodHandle H =
                Libc.link("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    }
    private static final class Listen {
        static final MethodHandle H =
                Libc.link("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    }
    private static final class Connect {
        static final MethodHandle H =
                Libc.link("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    }
    private static final class Accept4 {
        static final MethodHandle H =
                Libc.link("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));
    }
    private static final class Shutdown {
        static final MethodHandle H =
                Libc.link("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    }

    /** A close-on-exec stream socket of {@code family} ({@code familyName} for the message). */
    static Fd stream(int family, String familyName, int extraFlags) throws NativeException {
        return open(family, SOCK_STREAM, familyName, extraFlags);
    }

    /** A close-on-exec socket of {@code family} and {@code type} ({@link #SOCK_STREAM}, {@link #SOCK_DGRAM}). */
    static Fd open(int family, int type, String familyName, int extraFlags) throws NativeException {
        int t = type | SOCK_CLOEXEC | extraFlags;
        return Fd.adopt((int) Libc.check("socket(" + familyName + ")", cap -> (int) Socket.H.invokeExact(cap, family, t, 0)));
    }

    /** bind(2) only. */
    static void bind(Fd fd, MemorySegment address, String where) throws NativeException {
        int s = fd.fd();
        int len = (int) address.byteSize();
        Libc.check("bind(" + where + ")", cap -> (int) Bind.H.invokeExact(cap, s, address, len));
    }

    /** listen(2) only. */
    static void listen(Fd fd, int backlog, String where) throws NativeException {
        int s = fd.fd();
        Libc.check("listen(" + where + ")", cap -> (int) Listen.H.invokeExact(cap, s, backlog));
    }

    /** connect(2), EINTR retried. */
    static void connect(Fd fd, MemorySegment address, String where) throws NativeException {
        int s = fd.fd();
        int len = (int) address.byteSize();
        Libc.check("connect(" + where + ")", cap -> (int) Connect.H.invokeExact(cap, s, address, len));
    }

    /** accept4(2) with SOCK_CLOEXEC (and SOCK_NONBLOCK if asked): the new descriptor or -errno. */
    public static int accept(int listenFd, boolean nonBlocking) {
        int flags = SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0);
        int r;
        do {
            r = (int) Libc.once(cap -> (int) Accept4.H.invokeExact(cap, listenFd, 0L, 0L, flags));
        } while (r == -Errno.EINTR);
        return r;
    }

    /** shutdown(2) with {@link #SHUT_RD}, {@link #SHUT_WR} or {@link #SHUT_RDWR}: 0 or -errno. */
    public static int shutdown(int fd, int how) {
        return (int) Libc.once(cap -> (int) Shutdown.H.invokeExact(cap, fd, how));
    }
}
