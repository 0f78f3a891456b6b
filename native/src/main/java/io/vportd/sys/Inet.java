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
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * Socket set-up calls beyond {@link Posix}: TCP listeners (IPv4 and IPv6) and non-blocking
 * Unix-socket connects, for the port endpoints. Same conventions as {@code Posix}: method
 * handles in static finals called with {@code invokeExact}, errno captured with
 * {@code captureCallState}; set-up calls throw {@link NativeException}, the rest return
 * {@code -errno}. Accept with {@link Posix#accept}; data moves with Posix's readv/writev.
 */
public final class Inet {

    private Inet() {
    }

    private static final int AF_UNIX = 1;
    private static final int AF_INET = 2;
    private static final int AF_INET6 = 10;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_NONBLOCK = 04000;
    private static final int SOCK_CLOEXEC = 02000000;
    private static final int SOL_SOCKET = 1;
    private static final int SO_REUSEADDR = 2;
    private static final int IPPROTO_TCP = 6;
    private static final int TCP_NODELAY = 1;
    private static final int IPPROTO_IPV6 = 41;
    private static final int IPV6_V6ONLY = 26;
    private static final int SOCKADDR_IN_SIZE = 16;
    private static final int SOCKADDR_IN6_SIZE = 28;
    private static final int SOCKADDR_UN_SIZE = 110;
    private static final int SUN_PATH_MAX = 108;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO_HANDLE =
            CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE = Linker.Option.captureCallState("errno");

    private static MethodHandle linkErrno(String name, FunctionDescriptor desc) {
        MemorySegment symbol = LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
        return LINKER.downcallHandle(symbol, desc, CAPTURE);
    }

    private static final MethodHandle SOCKET = linkErrno("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle BIND = linkErrno("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle LISTEN = linkErrno("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle CONNECT = linkErrno("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SETSOCKOPT = linkErrno("setsockopt",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle GETSOCKNAME = linkErrno("getsockname",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));

    /** Capture state per thread (set-up calls only, so a small allocation per thread is fine). */
    private static final ThreadLocal<MemorySegment> CAPTURE_SEGMENT =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE_LAYOUT));

    private static int errno(MemorySegment cap) {
        return (int) ERRNO_HANDLE.get(cap, 0L);
    }

    private static AssertionError linkageBug(Throwable t) {
        return new AssertionError("native call failed to invoke", t);
    }

    /**
     * A non-blocking, close-on-exec TCP listener on {@code address:port} with SO_REUSEADDR
     * (IPv6 listeners are IPv6-only). Port 0 picks a free port: see {@link #localPort}.
     */
    public static Fd tcpListen(InetAddress address, int port, int backlog) throws NativeException {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("TCP port must be 0..65535, got " + port);
        }
        MemorySegment cap = CAPTURE_SEGMENT.get();
        boolean v6 = address instanceof Inet6Address;
        String where = (v6 ? "[" + address.getHostAddress() + "]" : address.getHostAddress()) + ":" + port;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = sockaddrIn(arena, address, port);
            int fd = (int) SOCKET.invokeExact(cap, v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (fd < 0) {
                throw new NativeException("socket(" + (v6 ? "AF_INET6" : "AF_INET") + ")", errno(cap));
            }
            Fd owned = Fd.adopt(fd);
            try {
                MemorySegment one = arena.allocate(JAVA_INT);
                one.set(JAVA_INT, 0, 1);
                if ((int) SETSOCKOPT.invokeExact(cap, fd, SOL_SOCKET, SO_REUSEADDR, one, 4) < 0) {
                    throw new NativeException("setsockopt(SO_REUSEADDR)", errno(cap));
                }
                if (v6 && (int) SETSOCKOPT.invokeExact(cap, fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4) < 0) {
                    throw new NativeException("setsockopt(IPV6_V6ONLY)", errno(cap));
                }
                if ((int) BIND.invokeExact(cap, fd, sa, (int) sa.byteSize()) < 0) {
                    throw new NativeException("bind(" + where + ")", errno(cap));
                }
                if ((int) LISTEN.invokeExact(cap, fd, backlog) < 0) {
                    throw new NativeException("listen(" + where + ")", errno(cap));
                }
                return owned;
            } catch (Throwable t) {
                owned.closeQuietly();
                throw t;
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    private static MemorySegment sockaddrIn(Arena arena, InetAddress address, int port) {
        byte[] addr = address.getAddress();
        short portBe = (short) (((port & 0xff) << 8) | ((port >>> 8) & 0xff));
        if (address instanceof Inet4Address) {
            MemorySegment sa = arena.allocate(SOCKADDR_IN_SIZE, 4);
            sa.set(JAVA_SHORT, 0, (short) AF_INET);
            sa.set(JAVA_SHORT, 2, portBe);
            MemorySegment.copy(addr, 0, sa, ValueLayout.JAVA_BYTE, 4, 4);
            return sa;
        }
        MemorySegment sa = arena.allocate(SOCKADDR_IN6_SIZE, 4);
        sa.set(JAVA_SHORT, 0, (short) AF_INET6);
        sa.set(JAVA_SHORT, 2, portBe);
        MemorySegment.copy(addr, 0, sa, ValueLayout.JAVA_BYTE, 8, 16);
        if (address instanceof Inet6Address a6 && a6.getScopeId() != 0) {
            sa.set(JAVA_INT, 24, a6.getScopeId());
        }
        return sa;
    }

    /** The local TCP port a socket is bound to, or -errno. */
    public static int localPort(int fd) {
        MemorySegment cap = CAPTURE_SEGMENT.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = arena.allocate(SOCKADDR_IN6_SIZE, 4);
            MemorySegment len = arena.allocate(JAVA_INT);
            len.set(JAVA_INT, 0, SOCKADDR_IN6_SIZE);
            if ((int) GETSOCKNAME.invokeExact(cap, fd, sa, len) < 0) {
                return -errno(cap);
            }
            short be = sa.get(JAVA_SHORT, 2);
            return Short.toUnsignedInt(ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN ? Short.reverseBytes(be) : be);
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** Sets TCP_NODELAY (console keystrokes should not wait for Nagle): 0 or -errno. */
    public static int tcpNoDelay(int fd) {
        MemorySegment cap = CAPTURE_SEGMENT.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(JAVA_INT);
            one.set(JAVA_INT, 0, 1);
            if ((int) SETSOCKOPT.invokeExact(cap, fd, IPPROTO_TCP, TCP_NODELAY, one, 4) < 0) {
                return -errno(cap);
            }
            return 0;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /**
     * A non-blocking, close-on-exec AF_UNIX stream socket connected to {@code path}. A Unix
     * socket connect completes at once or fails (ENOENT, ECONNREFUSED, EAGAIN when the server's
     * backlog is full): it never leaves the caller waiting.
     */
    public static Fd unixConnectNonBlocking(Path path) throws NativeException {
        byte[] bytes = path.toString().getBytes(StandardCharsets.UTF_8);
        if (bytes.length == 0 || bytes.length >= SUN_PATH_MAX) {
            throw new NativeException("connect(" + path + ")", Errno.ENAMETOOLONG);
        }
        MemorySegment cap = CAPTURE_SEGMENT.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = arena.allocate(SOCKADDR_UN_SIZE, 8);
            sa.set(JAVA_SHORT, 0, (short) AF_UNIX);
            MemorySegment.copy(bytes, 0, sa, ValueLayout.JAVA_BYTE, 2, bytes.length);
            int fd = (int) SOCKET.invokeExact(cap, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (fd < 0) {
                throw new NativeException("socket(AF_UNIX)", errno(cap));
            }
            Fd owned = Fd.adopt(fd);
            try {
                while (true) {
                    if ((int) CONNECT.invokeExact(cap, fd, sa, SOCKADDR_UN_SIZE) == 0) {
                        return owned;
                    }
                    int e = errno(cap);
                    if (e != Errno.EINTR) {
                        throw new NativeException("connect(" + path + ")", e);
                    }
                }
            } catch (Throwable t) {
                owned.closeQuietly();
                throw t;
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }
}
