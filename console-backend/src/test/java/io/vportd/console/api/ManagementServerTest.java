package io.vportd.console.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.vportd.console.ctl.ApiClient;
import io.vportd.console.device.PortEvent;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(30)
class ManagementServerTest {

    @TempDir
    Path dir;
    private ManagementServer server;
    private Path sock;

    @BeforeEach
    void start() throws IOException {
        sock = dir.resolve("api.sock");
        server = ManagementServer.start(sock, new FakePorts(8));
    }

    @AfterEach
    void stop() {
        server.close();
    }

    @Test
    void socketIsPrivateAndRemovedOnClose() throws IOException {
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(sock)));
        server.close();
        assertTrue(Files.notExists(sock));
    }

    @Test
    void runningOutOfDescriptorsDoesNotEndTheAcceptor() throws Exception {
        try (java.nio.channels.SocketChannel waiting = java.nio.channels.SocketChannel.open(
                java.net.StandardProtocolFamily.UNIX)) {
            try (io.vportd.console.testing.FdLimit none = io.vportd.console.testing.FdLimit.exhaust()) {
                waiting.connect(java.net.UnixDomainSocketAddress.of(sock)); // needs no new descriptor here
                // the acceptor's accept fails with EMFILE for as long as the limit holds
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (server.acceptFailures() == 0 && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
            }
            assertTrue(server.acceptFailures() > 0, "accept failed while the process had no descriptor left");
        }
        try (ApiClient c = ApiClient.connect(sock)) {
            assertTrue(c.call(c.request("list-ports")).path("ok").asBoolean(), "the API still serves");
        }
    }

    @Test
    void garbageGetsAnErrorAndTheConnectionGoesOn() throws IOException {
        try (ApiClient c = ApiClient.connect(sock)) {
            assertEquals("parse-error", c.callRaw("}{").path("error").path("code").asText());
            assertEquals("unknown-op", c.callRaw("{\"id\":1,\"op\":\"nope\"}").path("error").path("code").asText());
            JsonNode added = c.call(c.request("add-port").put("spec", "nr=2,name=two,null"));
            assertTrue(added.path("ok").asBoolean(), added::toString);
            assertEquals(1, c.call(c.request("list-ports")).path("ports").size());
        }
    }

    @Test
    void overlongLineIsRefusedAndTheDaemonServesOthers() throws IOException {
        try (ApiClient c = ApiClient.connect(sock)) {
            JsonNode r = c.callRaw("{\"id\":1,\"op\":\"" + "x".repeat(ManagementServer.MAX_LINE + 10) + "\"}");
            assertEquals("request-too-long", r.path("error").path("code").asText());
            assertThrows(IOException.class, () -> c.callRaw("{\"op\":\"list-ports\"}"), "that connection is closed");
        }
        try (ApiClient c = ApiClient.connect(sock)) {
            assertTrue(c.call(c.request("list-ports")).path("ok").asBoolean());
        }
    }

    @Test
    void eventsReachSubscribersOnly() throws IOException {
        try (ApiClient sub = ApiClient.connect(sock); ApiClient other = ApiClient.connect(sock)) {
            assertTrue(sub.call(sub.request("subscribe")).path("subscribed").asBoolean());
            assertTrue(other.call(other.request("list-ports")).path("ok").asBoolean());
            server.onPortEvent(new PortEvent(PortEvent.PORT_ADDED, 4, "four", "null"));
            server.onPortEvent(new PortEvent(PortEvent.GUEST_OPEN, 4, "four", null));
            JsonNode e1 = sub.nextEvent();
            assertEquals("port-added", e1.path("event").asText());
            assertEquals(4, e1.path("data").path("nr").asInt());
            assertEquals("four", e1.path("data").path("name").asText());
            assertEquals("guest-open", sub.nextEvent().path("event").asText());
            // A response after the events still matches its request; the other client got no event.
            JsonNode r = other.call(other.request("list-ports"));
            assertTrue(r.path("ok").asBoolean());
            server.onPortEvent(new PortEvent(PortEvent.PORT_REMOVED, 4, "four", null));
            assertTrue(sub.call(sub.request("unsubscribe")).path("ok").asBoolean());
            assertEquals("port-removed", sub.nextEvent().path("event").asText(), "kept while waiting for the response");
        }
    }

    @Test
    void tooManyClientsAreRefusedWithAnError() throws IOException {
        ApiClient[] clients = new ApiClient[ManagementServer.MAX_CLIENTS];
        try {
            for (int i = 0; i < clients.length; i++) {
                clients[i] = ApiClient.connect(sock);
                assertTrue(clients[i].call(clients[i].request("list-ports")).path("ok").asBoolean());
            }
            try (ApiClient extra = ApiClient.connect(sock)) {
                JsonNode r = extra.readNext(); // sent on connect, then the connection is closed
                assertEquals("too-many-clients", r.path("error").path("code").asText());
            }
        } finally {
            for (ApiClient c : clients) {
                if (c != null) {
                    c.close();
                }
            }
        }
    }
}
