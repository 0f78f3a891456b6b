package io.vportd.console.endpoint;

import java.time.Duration;
import io.vportd.testsupport.Await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.sys.Epoll;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** TCP and PTY endpoints against a recording host (no data plane): life cycle and refusals. */
@Timeout(30)
class ListenerEndpointsTest {

    @TempDir
    Path dir;

    @Test
    void tcpAcceptsOneClientAndRefusesASecond() throws Exception {
        UnixClientEndpointTest.Host host = new UnixClientEndpointTest.Host();
        TcpServerEndpoint e = new TcpServerEndpoint("127.0.0.1", 0, "port 3"); // port 0: the kernel picks, boundPort() tells
        e.open();
        e.start(host, 3);
        try {
            assertEquals(List.of("watch 3 role " + EndpointHost.ROLE_LISTEN), host.calls);
            assertFalse(e.connected());
            assertTrue(e.describe().startsWith("tcp 127.0.0.1:"), e.describe());
            try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", e.boundPort()))) {
                // what the data plane does on EPOLLIN of the listener, until the client is accepted
                Await.until("the TCP client to be accepted", Duration.ofSeconds(10), () -> {
                    if (e.connected()) {
                        return true;
                    }
                    e.onListenReady(Epoll.EPOLLIN);
                    return false;
                });
                assertEquals("connected 3", host.calls.get(host.calls.size() - 1));
                try (SocketChannel second = SocketChannel.open(new InetSocketAddress("127.0.0.1", e.boundPort()))) {
                    long before = host.calls.size();
                    e.onListenReady(Epoll.EPOLLIN);
                    assertEquals(-1, second.read(ByteBuffer.allocate(1)), "the second client sees end of file");
                    assertEquals(before, host.calls.size(), "and is not reported");
                }
                e.hostDisconnected();
                assertFalse(e.connected());
                assertEquals(-1, c.read(ByteBuffer.allocate(1)), "the first client's connection was closed");
            }
        } finally {
            e.close();
        }
    }

    @Test
    void ptyMakesALinkToItsSlaveAndRemovesItOnClose() throws Exception {
        UnixClientEndpointTest.Host host = new UnixClientEndpointTest.Host();
        Path link = dir.resolve("console");
        PtyEndpoint e = new PtyEndpoint(link, "port 4");
        e.open();
        e.start(host, 4);
        try {
            assertTrue(e.connected());
            assertTrue(e.slavePath().startsWith("/dev/pts/"), e.slavePath());
            assertEquals(Path.of(e.slavePath()), Files.readSymbolicLink(link));
            assertEquals(List.of("watch 4 role " + EndpointHost.ROLE_CONNECTION, "connected 4"), host.calls);
            assertEquals(e.outputFd(), e.terminalFd());
        } finally {
            e.close();
        }
        assertFalse(Files.exists(link, java.nio.file.LinkOption.NOFOLLOW_LINKS), "the link goes with the endpoint");
    }

    @Test
    void ptyRefusesToReplaceARegularFile() throws IOException {
        Path file = Files.writeString(dir.resolve("precious"), "data");
        PtyEndpoint e = new PtyEndpoint(file, "port 4");
        IOException x = assertThrows(IOException.class, e::open);
        assertTrue(x.getMessage().contains("not a symlink"), x.getMessage());
        assertEquals("data", Files.readString(file));
        assertFalse(e.connected(), "a failed start leaves nothing open");
    }
}
