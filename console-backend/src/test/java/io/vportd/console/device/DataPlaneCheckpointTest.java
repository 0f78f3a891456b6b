package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.cli.PortSpecParser;
import io.vportd.sys.Io;
import io.vportd.testsupport.Await;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.LinkedBlockingDeque;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The data plane's side of crash-recovery checkpoints: once asked, it hands in a snapshot of the
 * ports at once and again after every change a recovery needs (a host client connecting or
 * leaving, a port added), each with duplicates of the endpoints' descriptors the receiver owns;
 * an endpoint a crash cannot keep (a file) says it must be reopened; nothing changes, nothing
 * comes.
 */
@Timeout(30)
class DataPlaneCheckpointTest {

    private static final Duration WAIT = Duration.ofSeconds(10);

    @TempDir
    Path dir;
    private DataPlane dp;
    private final LinkedBlockingDeque<DeviceSnapshot> got = new LinkedBlockingDeque<>();

    @AfterEach
    void stop() {
        if (dp != null) {
            dp.close();
        }
        got.forEach(s -> s.ports().forEach(p -> p.endpoint().closeRest()));
    }

    private DeviceSnapshot next() throws InterruptedException {
        DeviceSnapshot s = got.pollFirst(WAIT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS);
        assertTrue(s != null, "a checkpoint came");
        return s;
    }

    private static DeviceSnapshot.Port port(DeviceSnapshot s, int id) {
        return s.ports().stream().filter(p -> p.config().id() == id).findFirst().orElseThrow();
    }

    @Test
    void snapshotsFollowTheChangesARecoveryNeeds() throws Exception {
        Path sock = dir.resolve("agent.sock");
        dp = new DataPlane(new QueueMap(8), List.of(PortSpecParser.parse("nr=1,name=agent,socket=" + sock),
                PortSpecParser.parse("nr=2,name=log,file=" + dir.resolve("guest.log"))), ConsoleDevice::endpointFor);
        dp.start();
        dp.checkpointTo(got::add);
        DeviceSnapshot first = next();
        assertEquals(2, first.ports().size());
        assertEquals(List.of("listener"), List.copyOf(port(first, 1).endpoint().fds().keySet()));
        assertTrue(port(first, 2).endpoint().reopens(), "a file endpoint is reopened after a crash");
        assertTrue(port(first, 2).endpoint().fds().isEmpty());
        int listenerCopy = port(first, 1).endpoint().fds().get("listener");
        assertTrue(Io.fileId(listenerCopy) != null, "the copy is an open descriptor the receiver owns");

        try (SocketChannel client = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            client.connect(UnixDomainSocketAddress.of(sock));
            DeviceSnapshot connected = next();
            assertEquals(java.util.Set.of("listener", "peer"), port(connected, 1).endpoint().fds().keySet(),
                    "the connected host client is in the checkpoint");
        }
        DeviceSnapshot left = next();
        assertFalse(port(left, 1).endpoint().fds().containsKey("peer"), "a client that left is not");

        dp.addPort(PortSpecParser.parse("nr=5,name=hot,null"));
        Await.until("a checkpoint with the added port", WAIT,
                () -> got.stream().anyMatch(s -> s.ports().stream().anyMatch(p -> p.config().id() == 5)));
        Thread.sleep(200);
        got.forEach(s -> s.ports().forEach(p -> p.endpoint().closeRest()));
        got.clear();
        Thread.sleep(300);
        assertTrue(got.isEmpty(), "nothing changed, no checkpoint: " + got.size());
    }
}
