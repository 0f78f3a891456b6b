package io.vportd.console.handover;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.cli.PortSpecParser;
import io.vportd.console.device.ConsoleDevice;
import io.vportd.console.device.PortLogContext;
import io.vportd.console.device.PortStatus;
import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.sys.ListenFds;
import io.vportd.sys.MemFd;
import io.vportd.sys.SdNotify;
import io.vportd.sys.UnixSockets;
import io.vportd.testsupport.Await;
import io.vportd.vhost.VhostUserServer;
import io.vportd.vhost.testing.TestFrontend;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Crash recovery in one JVM: a daemon keeps a stand-in descriptor store up to date (a datagram
 * socket playing systemd); its vhost-user server and data plane are then stopped where they are,
 * as if the process had died, and a device is recovered from what the store holds. It has the
 * same ports, the connected host client (no end of file), the frontend's session, and a ring
 * that restarts at its used index although the checkpoint's base is older. A checkpoint that is
 * not one is refused with the reason.
 */
@Timeout(60)
class RecoveryTest {

    static final Duration WAIT = Duration.ofSeconds(10);
    static final int MAX_PORTS = 4;
    static final int QUEUES = 2 * (MAX_PORTS + 1);

    @TempDir
    Path dir;

    @Test
    void aDeviceRecoveredFromTheStoreServesTheSameFrontendAndHostClients() throws Exception {
        Path socket = dir.resolve("vportd.sock");
        Path notify = dir.resolve("notify");
        StandInStore store = new StandInStore(notify);
        ConsoleDevice device = new ConsoleDevice(MAX_PORTS, List.of(
                PortSpecParser.parse("nr=0,console,cols=100,rows=40,socket=" + dir.resolve("con.sock")),
                PortSpecParser.parse("nr=2,name=agent,socket=" + dir.resolve("a.sock")),
                PortSpecParser.parse("nr=3,name=log,file=" + dir.resolve("guest.log"))));
        Checkpointer cp = new Checkpointer(SdNotify.forAddress(notify.toString()),
                new Checkpointer.Daemon(socket.toString(), null, null, false), 0).start();
        VhostUserServer vhost = new VhostUserServer(socket, device).watchSessions(cp::sessionChanged).start();
        device.dataPlane().checkpointTo(cp::deviceChanged);
        Recovery.Recovered r = null;
        try (SocketChannel agent = SocketChannel.open(StandardProtocolFamily.UNIX);
             TestFrontend fe = TestFrontend.connect(socket, QUEUES, 12)) {
            agent.connect(UnixDomainSocketAddress.of(dir.resolve("a.sock")));
            fe.startQueue(5, 0x5000, 0x6000, 0x7000, 64);
            Await.until("the agent client connected", WAIT,
                    () -> device.dataPlane().ports().stream().anyMatch(p -> p.id() == 2 && p.hostConnected()));
            fe.getConfig(0, 4); // a round trip: the session's messages were all handed to the checkpointer
            // The store is read while waiting, as systemd reads its socket: the session's checkpoints
            // are more datagrams than a host's default queue of a datagram socket holds
            // (net.unix.max_dgram_qlen is 10 unless systemd raised it to 512), and the checkpointer's
            // send waits while that queue is full.
            Await.until("the checkpoint holds the client", WAIT, () -> {
                store.pump();
                return cp.awaitIdle(100) && cp.storedNames().size() >= 7; // vhost listener + connection, memory, kick, call, 3 port fds
            });
            assertTrue(cp.awaitIdle(WAIT.toMillis()));

            // The process "dies": its server stops at a message boundary for good, its data plane
            // freezes, nothing of it touches the rings or the endpoints again.
            VhostUserServer.Suspension s = vhost.suspend(WAIT);
            device.dataPlane().prepareHandover(1000);
            device.dataPlane().freezeForHandover();
            cp.close();
            // Meanwhile the device had completed 6 chains of queue 5 (used index 6 in guest memory).
            fe.guestRam().set(ValueLayout.JAVA_SHORT_UNALIGNED, 0x7000 + 2, (short) 6);

            store.pump();
            r = Recovery.from(store.passBack(), socket, PortLogContext.DEFAULT);
            r.device().dataPlane().thawAfterCrash();
            r.vhost().start();
            s.handedOver();

            assertEquals(1, r.recoveries());
            List<PortStatus> ports = r.device().dataPlane().ports();
            assertEquals(List.of(0, 2, 3), ports.stream().map(PortStatus::id).toList());
            assertTrue(ports.get(1).hostConnected(), "the agent's host client came back from the store");
            assertEquals(6, fe.stopQueue(5), "the ring resumed at its used index, not at the checkpoint's base 0");
            agent.configureBlocking(false);
            assertEquals(0, agent.read(ByteBuffer.allocate(16)), "the host client saw no end of file");
        } finally {
            if (r != null) {
                r.vhost().close();
                r.device().close();
                r.store().values().forEach(Fd::closeQuietly);
            }
            cp.close();
            vhost.close();
            device.close();
            store.close();
        }
    }

    @Test
    void aCheckpointThatIsNotOneIsRefusedWithTheReason() throws Exception {
        Fd memfd = MemFd.create("bad");
        byte[] junk = "{\"format\":\"something-else\",\"version\":1}".getBytes(StandardCharsets.UTF_8);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment b = a.allocateFrom(ValueLayout.JAVA_BYTE, junk);
            assertEquals(junk.length, Io.write(memfd.fd(), b.address(), junk.length));
        }
        Fd stray = Io.dup(memfd.fd());
        Map<String, List<Fd>> passed = new LinkedHashMap<>();
        passed.put("vportd.state.3", List.of(memfd));
        passed.put("vportd.f9.1", List.of(stray));
        IOException e = assertThrows(IOException.class,
                () -> Recovery.from(ListenFds.of(passed), dir.resolve("vportd.sock"), PortLogContext.DEFAULT));
        assertTrue(e.getMessage().contains("is not a version 1 vportd checkpoint"), e.getMessage());
        assertTrue(!memfd.isOpen() && !stray.isOpen(), "everything passed is closed after a refusal");
        assertEquals(null, Recovery.from(ListenFds.none(), dir.resolve("vportd.sock"), PortLogContext.DEFAULT),
                "no checkpoint: nothing to recover");
    }
}
