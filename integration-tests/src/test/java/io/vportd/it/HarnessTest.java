package io.vportd.it;

import io.vportd.testsupport.Await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The harness pieces that need no guest: sockets, marks, digests, processes, waiting. */
@Timeout(60)
class HarnessTest {

    private Path dir;

    @BeforeEach
    void dir() throws IOException {
        dir = Files.createTempDirectory("vportd-harness-");
    }

    @AfterEach
    void clean() throws IOException {
        TempDirs.removeFlat(dir);
    }

    @Test
    void hostPortWaitsForTheListenerThenMovesBytesExactly() throws Exception {
        Path sock = dir.resolve("p.sock");
        CountDownLatch connecting = new CountDownLatch(1);
        CompletableFuture<HostPort> client = CompletableFuture.supplyAsync(() -> {
            connecting.countDown();
            return HostPort.connect(sock, Duration.ofSeconds(30));
        });
        connecting.await();
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(sock));
            try (SocketChannel peer = server.accept(); HostPort port = client.get()) {
                int n = 3 * 1024 * 1024 + 17;
                CompletableFuture<String> peerSha = CompletableFuture.supplyAsync(() -> readSha(peer, n));
                String sent = port.writeRandom(n, 42, Duration.ofSeconds(30));
                assertEquals(sent, peerSha.get(), "bytes arrive exactly");

                peer.write(ByteBuffer.wrap("abc".getBytes()));
                assertEquals("abc", port.readString(3, Duration.ofSeconds(10)));
                peer.shutdownOutput();
                assertEquals(0, port.readUntilEof(Duration.ofSeconds(10)));
            }
        }
    }

    @Test
    void hostPortWaitsFailWithTheReason() throws Exception {
        Path sock = dir.resolve("q.sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(sock));
            try (HostPort port = HostPort.connect(sock, Duration.ofSeconds(10)); SocketChannel peer = server.accept()) {
                AssertionError timeout = assertThrows(AssertionError.class,
                        () -> port.readExactly(1, Duration.ofMillis(50)));
                assertTrue(timeout.getMessage().contains("timed out"), timeout.getMessage());
                port.abortWhen(() -> true, "the guest has ended");
                AssertionError aborted = assertThrows(AssertionError.class,
                        () -> port.readExactly(1, Duration.ofSeconds(30)));
                assertTrue(aborted.getMessage().contains("the guest has ended"), aborted.getMessage());
                peer.shutdownOutput();
                AssertionError eof = assertThrows(AssertionError.class,
                        () -> port.readExactly(4, Duration.ofSeconds(10)));
                assertTrue(eof.getMessage().contains("EOF"), eof.getMessage());
            }
        }
        AssertionError none = assertThrows(AssertionError.class,
                () -> HostPort.connect(dir.resolve("missing.sock"), Duration.ofMillis(50)));
        assertTrue(none.getMessage().contains("missing.sock"), none.getMessage());
    }

    @Test
    void marksAreParsedExactly() {
        GuestResult r = new GuestResult(0, String.join("\n",
                "VPORTD-MARK port vport0p1 org.test.one",
                "VPORTD-MARK portx nope",
                "noise VPORTD-MARK port nope",
                "VPORTD-MARK port vport0p2 org.test.two",
                "VPORTD-MARK alone",
                ""));
        assertEquals(List.of("vport0p1 org.test.one", "vport0p2 org.test.two"), r.marks("port"));
        assertEquals("", r.mark("alone"));
        assertThrows(AssertionError.class, () -> r.mark("port"), "two marks are not one");
        assertThrows(AssertionError.class, () -> r.mark("absent"));
        assertThrows(AssertionError.class, () -> new GuestResult(124, "x").assertSucceeded());
        assertEquals(Optional.empty(), Guest.markValue("VPORTD-MARKport", "port"));
    }

    @Test
    void consoleCleaningDropsEscapesAndCarriageReturns() {
        assertEquals("SeaBIOS x", LineLog.clean("\u001Bc\u001B[?7l\u001B[2JSeaBIOS x\r"));
    }

    @Test
    void digestsMatchSha256sum() {
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                Digests.sha256Hex("abc".getBytes()));
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                Digests.fromSha256sumLine("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -"));
        assertThrows(AssertionError.class, () -> Digests.fromSha256sumLine("sha256sum: can't open"));
    }

    @Test
    void hostProcessStreamsKeepsAndEnds() {
        try (HostProcess p = HostProcess.start("sh", List.of("sh", "-c", "echo starting; echo ready 42; exit 3"),
                null, Map.of())) {
            assertEquals("42", p.awaitLine(Pattern.compile("^ready (\\d+)$"), Duration.ofSeconds(30)).group(1));
            assertEquals(3, p.awaitExit(Duration.ofSeconds(30)));
            assertTrue(p.output().contains("starting\n"), p.output());
            AssertionError ended = assertThrows(AssertionError.class,
                    () -> p.awaitLine(Pattern.compile("never"), Duration.ofSeconds(30)));
            assertTrue(ended.getMessage().contains("ended before"), ended.getMessage());
        }
        HostProcess sleeper = HostProcess.start("sleeper", List.of("sh", "-c", "echo up; exec sleep 600"), null, Map.of());
        try {
            sleeper.awaitLine(Pattern.compile("^up$"), Duration.ofSeconds(30));
        } finally {
            sleeper.close();
        }
        assertTrue(!sleeper.isAlive(), "close() ends the process");
    }

    @Test
    void awaitReturnsTheValueOrNamesWhatItWaitedFor() {
        int[] calls = {0};
        assertEquals("done", Await.value("three calls", Duration.ofSeconds(10),
                () -> ++calls[0] >= 3 ? Optional.of("done") : Optional.empty()));
        AssertionError e = assertThrows(AssertionError.class,
                () -> Await.until("the impossible", Duration.ofMillis(20), () -> false));
        assertTrue(e.getMessage().contains("the impossible"), e.getMessage());
    }

    private static String readSha(SocketChannel peer, long n) {
        try {
            MessageDigest md = Digests.sha256();
            ByteBuffer b = ByteBuffer.allocate(65536);
            long got = 0;
            while (got < n) {
                b.clear();
                int r = peer.read(b);
                if (r < 0) {
                    throw new AssertionError("EOF after " + got);
                }
                b.flip();
                md.update(b);
                got += r;
            }
            return Digests.hex(md.digest());
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }
}
