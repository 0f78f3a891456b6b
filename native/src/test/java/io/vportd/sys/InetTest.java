package io.vportd.sys;

import java.util.Optional;
import java.time.Duration;
import io.vportd.testsupport.Await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(30)
class InetTest {

    @TempDir
    Path dir;

    @Test
    void tcpListenerOnLoopbackAcceptsAndCarriesBytes() throws Exception {
        try (Fd l = Inet.tcpListen(InetAddress.getByName("127.0.0.1"), 0, 4)) {
            int port = Inet.localPort(l.fd());
            assertTrue(port > 0, "an ephemeral port was bound: " + port);
            assertEquals(-Errno.EAGAIN, Sockets.accept(l.fd(), true), "non-blocking listener, nobody waiting");
            try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", port))) {
                int fd = accepted(l.fd());
                try (Fd s = Fd.adopt(fd)) {
                    assertEquals(0, Inet.tcpNoDelay(s.fd()));
                    c.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
                    try (var arena = java.lang.foreign.Arena.ofConfined()) {
                        var buf = arena.allocate(8);
                        long n;
                        do {
                            n = Io.read(s.fd(), buf.address(), 8);
                        } while (n == -Errno.EAGAIN);
                        assertEquals(3, n);
                    }
                }
            }
        }
    }

    @Test
    void secondListenerOnTheSamePortIsRefusedWithErrno() throws Exception {
        try (Fd l = Inet.tcpListen(InetAddress.getByName("127.0.0.1"), 0, 4)) {
            int port = Inet.localPort(l.fd());
            NativeException e = assertThrows(NativeException.class,
                    () -> Inet.tcpListen(InetAddress.getByName("127.0.0.1"), port, 4));
            assertEquals(98, e.errno(), e.getMessage()); // EADDRINUSE
            assertTrue(e.getMessage().contains("bind(127.0.0.1:" + port + ")"), e.getMessage());
        }
    }

    @Test
    void ipv6LoopbackWhenAvailable() throws Exception {
        Fd l;
        try {
            l = Inet.tcpListen(InetAddress.getByName("::1"), 0, 4);
        } catch (NativeException noIpv6) {
            return; // a host without IPv6 loopback: nothing to check
        }
        try (l) {
            int port = Inet.localPort(l.fd());
            try (SocketChannel c = SocketChannel.open(new InetSocketAddress("::1", port))) {
                Io.close(accepted(l.fd()));
            }
        }
    }

    @Test
    void unixConnectNonBlocking() throws Exception {
        Path p = dir.resolve("s.sock");
        NativeException missing = assertThrows(NativeException.class, () -> UnixSockets.connectNonBlocking(p));
        assertEquals(2, missing.errno(), missing.getMessage()); // ENOENT
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(p));
            try (Fd c = UnixSockets.connectNonBlocking(p); SocketChannel s = server.accept()) {
                assertTrue(Io.isNonBlocking(c.fd()));
                assertTrue(s.isConnected());
            }
        }
        assertThrows(NativeException.class, () -> UnixSockets.connectNonBlocking(dir.resolve("x".repeat(120))));
    }

    private static int accepted(int listenFd) {
        return Await.value("a connection to accept", Duration.ofSeconds(10), () -> {
            int fd = Sockets.accept(listenFd, true);
            return fd >= 0 ? Optional.of(fd) : Optional.empty();
        });
    }
}
