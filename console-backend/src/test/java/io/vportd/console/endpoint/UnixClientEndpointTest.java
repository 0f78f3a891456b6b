package io.vportd.console.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The unix-client endpoint's connect, back-off and reconnect, driven by explicit ticks. */
@Timeout(30)
class UnixClientEndpointTest {

    @TempDir
    Path dir;

    /** Records what the endpoint asks of the data plane. */
    static final class Host implements EndpointHost {
        final List<String> calls = new ArrayList<>();

        @Override
        public void watch(int fd, int events, int port, int role) {
            calls.add("watch " + port + " role " + role);
        }

        @Override
        public void unwatch(int fd) {
            calls.add("unwatch");
        }

        @Override
        public void hostConnected(int port) {
            calls.add("connected " + port);
        }
    }

    @Test
    void backsOffWhileAbsentConnectsWhenPresentReconnectsAfterLoss() throws Exception {
        Path sock = dir.resolve("agent.sock");
        Host host = new Host();
        UnixClientEndpoint e = new UnixClientEndpoint(sock, "port 5");
        e.open();
        e.start(host, 5);
        assertFalse(e.connected());
        assertTrue(e.wantsTicks(), "waiting for the server: ticks wanted");
        e.tick(System.nanoTime());
        assertEquals(List.of(), host.calls, "no server yet: nothing registered");

        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(sock));
            // A tick past the back-off deadline connects.
            long t = System.nanoTime() + 10_000_000_000L;
            e.tick(t);
            assertTrue(e.connected());
            assertFalse(e.wantsTicks());
            assertEquals(List.of("watch 5 role " + EndpointHost.ROLE_CONNECTION, "connected 5"), host.calls);
            assertEquals(e.outputFd(), e.inputFd());
            try (SocketChannel peer = server.accept()) {
                assertTrue(peer.isConnected());
            }
            e.hostDisconnected(); // the data plane saw end of file
            assertFalse(e.connected());
            assertTrue(e.wantsTicks());
            e.tick(System.nanoTime() + 10_000_000_000L);
            assertTrue(e.connected(), "reconnected after the loss");
            e.close();
            assertFalse(e.connected());
            assertFalse(e.wantsTicks(), "a closed endpoint never reconnects");
            e.tick(System.nanoTime() + 10_000_000_000L);
            assertFalse(e.connected());
        }
    }
}
