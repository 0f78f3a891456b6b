package io.vportd.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.ByteOrder;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * TCP sockets (IPv4 and IPv6) for the port endpoints: listeners, the bound port, TCP_NODELAY.
 * Accept with {@link Sockets#accept}; data moves with {@link Io}'s read/readv/writev.
 */
public final class Inet {

    private Inet() {
    }

    private static final int AF_INET = 2;
    private static final int AF_INET6 = 10;
    private static final int SO_REUSEADDR = 2;
    private static final int IPPROTO_TCP = 6;
    private static final int TCP_NODELAY = 1;
    private static final int IPPROTO_IPV6 = 41;
    private static final int IPV6_V6ONLY = 26;
    private static final int SOCKADDR_IN_SIZE = 16;
    private static final int SOCKADDR_IN6_SIZE = 28;

    private static final class Setsockopt {
        static final MethodHandle H =
                Libc.linkInt("setsockopt");
    }
    private static final class Getsockname {
        static final MethodHandle H =
                Libc.linkInt("getsockname");
    }

    /**
     * A non-blocking, close-on-exec TCP listener on {@code address:port} with SO_REUSEADDR
     * (IPv6 listeners are IPv6-only). Port 0 picks a free port: see {@link #localPort}.
     */
    public static Fd tcpListen(InetAddress address, int port, int backlog) throws NativeException {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("TCP port must be 0..65535, got " + port);
        }
        boolean v6 = address instanceof Inet6Address;
        String where = (v6 ? "[" + address.getHostAddress() + "]" : address.getHostAddress()) + ":" + port;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = sockaddrIn(arena, address, port);
            Fd owned = Sockets.stream(v6 ? AF_INET6 : AF_INET, v6 ? "AF_INET6" : "AF_INET", Sockets.SOCK_NONBLOCK);
            try {
                setFlag(owned.fd(), Sockets.SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR");
                if (v6) {
                    setFlag(owned.fd(), IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY");
                }
                Sockets.bind(owned, sa, where);
                Sockets.listen(owned, backlog, where);
                return owned;
            } catch (NativeException | RuntimeException e) {
                owned.closeQuietly();
                throw e;
            }
        }
    }

    private static void setFlag(int fd, int level, int option, String name) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocateFrom(JAVA_INT, 1);
            Libc.check("setsockopt(" + name + ")", cap -> Libc.call(Setsockopt.H, cap, fd, level, option, one.address(), 4));
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
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = arena.allocate(SOCKADDR_IN6_SIZE, 4);
            MemorySegment len = arena.allocateFrom(JAVA_INT, SOCKADDR_IN6_SIZE);
            int r = (int) Libc.once(cap -> Libc.call(Getsockname.H, cap, fd, sa.address(), len.address()));
            if (r < 0) {
                return r;
            }
            short be = sa.get(JAVA_SHORT, 2);
            return Short.toUnsignedInt(ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN ? Short.reverseBytes(be) : be);
        }
    }

    /** Sets TCP_NODELAY (console keystrokes should not wait for Nagle): 0 or -errno. */
    public static int tcpNoDelay(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocateFrom(JAVA_INT, 1);
            return (int) Libc.once(cap -> Libc.call(Setsockopt.H, cap, fd, IPPROTO_TCP, TCP_NODELAY, one.address(), 4));
        }
    }
}
