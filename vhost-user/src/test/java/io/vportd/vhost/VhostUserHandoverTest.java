package io.vportd.vhost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.sys.Fd;
import io.vportd.sys.UnixSockets;
import io.vportd.vhost.testing.RecordingBackend;
import io.vportd.vhost.testing.TestFrontend;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The vhost-user half of a live hand-over: a suspended server describes its session as messages;
 * a server adopting the listener, the connection and those messages (descriptors passed with
 * SCM_RIGHTS, as between two processes) runs the same rings at the same places over the same
 * memory and answers the frontend from then on; a suspension that is resumed loses no message.
 */
@Timeout(60)
class VhostUserHandoverTest {

    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final int QUEUES = 4;

    @TempDir
    Path dir;

    /** Passes descriptors through a socket pair, as to another process: the copies have new numbers. */
    private static int[] pass(int... fds) throws Exception {
        Fd[] pair = UnixSockets.pair();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment b = a.allocate(4);
            assertEquals(4, UnixSockets.sendWithFds(pair[0].fd(), b, 4, fds));
            int[] out = new int[UnixSockets.MAX_RECV_FDS];
            java.util.Arrays.fill(out, -1);
            assertEquals(4, UnixSockets.recvWithFds(pair[1].fd(), b, 4, out));
            return java.util.Arrays.copyOf(out, fds.length);
        } finally {
            pair[0].closeQuietly();
            pair[1].closeQuietly();
        }
    }

    private static List<Session.Message> received(List<Session.Replay> replay) throws Exception {
        List<Session.Message> out = new ArrayList<>();
        for (Session.Replay r : replay) {
            int[] fds = r.fds().length == 0 ? new int[0] : pass(r.fds());
            Fd[] owned = new Fd[fds.length];
            for (int i = 0; i < fds.length; i++) {
                owned[i] = Fd.adopt(fds[i]);
            }
            out.add(new Session.Message(new Codec.Header(r.request(), Codec.VERSION, r.payload().length), r.payload(), owned));
        }
        return out;
    }

    @Test
    void anAdoptingServerRunsTheSameRingsOverTheSameMemoryAndAnswersTheFrontend() throws Exception {
        Path sock = dir.resolve("ho.sock");
        RecordingBackend first = RecordingBackend.console(QUEUES);
        RecordingBackend second = RecordingBackend.console(QUEUES);
        VhostUserServer old = new VhostUserServer(sock, first).start();
        VhostUserServer next = null;
        try (TestFrontend fe = TestFrontend.connect(sock, QUEUES, 12)) {
            fe.startQueue(0, 0x1000, 0x2000, 0x3000, 64);
            fe.startQueue(3, 0x5000, 0x6000, 0x7000, 128);
            assertTrue(first.awaitEvent("startQueue 3", WAIT));
            first.setStopIndex(3, 7); // the device consumed 7 chains of queue 3
            first.setStopIndex(0, 2);

            VhostUserServer.Suspension s = old.suspend(WAIT);
            List<String> oldEvents = first.events();
            assertTrue(s.connectionFd() >= 0, "a frontend is being served");
            assertTrue(first.events().contains("stopQueue 3"), "rings stop before the session is described");

            int[] sockets = pass(s.listenerFd(), s.connectionFd());
            next = VhostUserServer.adopt(sock, second, VhostUserServer.Options.defaults(), Fd.adopt(sockets[0]),
                    Fd.adopt(sockets[1]), received(s.replay()));
            s.handedOver();
            next.start();

            assertEquals(first.ackedFeatures(), second.ackedFeatures(), "the negotiated features");
            QueueSetup q3 = second.running(3);
            assertEquals(128, q3.size());
            assertEquals(7, q3.firstAvailIndex(), "the ring resumes where the old device stopped");
            assertEquals(2, second.running(0).firstAvailIndex());
            assertTrue(q3.eventIdx());
            // Same memory: what the frontend writes into the ring is what the new backend sees.
            fe.guestRam().set(ValueLayout.JAVA_LONG_UNALIGNED, 0x5000, 0x1122334455667788L);
            assertEquals(0x1122334455667788L, q3.desc().get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
            // The frontend's next message is answered by the new server.
            assertEquals(7, fe.stopQueue(3));
            assertTrue(second.events().contains("stopQueue 3"));
            assertEquals(oldEvents, first.events(), "the old server handled nothing after the hand-over");
        } finally {
            if (next != null) {
                next.close();
            }
            old.close();
        }
    }

    /** What a {@link VhostUserServer.SessionWatcher} was told last, its descriptors passed on as to another process. */
    private static final class LastCheckpoint implements VhostUserServer.SessionWatcher {
        volatile int calls;
        volatile int[] sockets;
        volatile List<Session.Message> replay;
        volatile List<Session.Replay> described;

        /** An adopting server owns what was passed last. */
        synchronized void taken() {
            sockets = null;
            replay = null;
        }

        @Override
        public synchronized void changed(int listenerFd, int connectionFd, List<Session.Replay> r) {
            try {
                if (replay != null) { // an adopting server took (and nulled) the descriptors it used
                    replay.forEach(m -> java.util.Arrays.stream(m.fds()).filter(java.util.Objects::nonNull)
                            .forEach(Fd::closeQuietly));
                }
                if (sockets != null) {
                    java.util.Arrays.stream(sockets).forEach(io.vportd.sys.Io::close);
                }
                sockets = connectionFd < 0 ? pass(listenerFd) : pass(listenerFd, connectionFd);
                replay = received(r);
                described = r;
                calls++;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }

    @Test
    void aCheckpointRecoveryStartsEachRingAtItsUsedIndexNotAtItsStaleBase() throws Exception {
        Path sock = dir.resolve("cp.sock");
        RecordingBackend first = RecordingBackend.console(QUEUES);
        LastCheckpoint cp = new LastCheckpoint();
        VhostUserServer old = new VhostUserServer(sock, first).watchSessions(cp).start();
        VhostUserServer recovered = null;
        try (TestFrontend fe = TestFrontend.connect(sock, QUEUES, 12)) {
            fe.startQueue(3, 0x5000, 0x6000, 0x7000, 128);
            assertTrue(first.awaitEvent("startQueue 3", WAIT));
            fe.getConfig(0, 4); // a round trip: every earlier message was handled and told
            int told = cp.calls;
            assertTrue(told >= 2, "told at connect and after the messages that built the session");
            fe.getConfig(0, 4);
            assertEquals(told, cp.calls, "a pure query changes nothing to checkpoint");
            Session.Replay base = cp.described.stream().filter(r -> r.request() == Request.SET_VRING_BASE.code)
                    .findFirst().orElseThrow();
            assertEquals(0, Codec.vringState(base.payload()).num(), "the checkpoint's base is the one the ring started at");
            // The device completed 9 chains (used index 9) and then its process died.
            fe.guestRam().set(ValueLayout.JAVA_SHORT_UNALIGNED, 0x7000 + 2, (short) 9);

            RecordingBackend second = RecordingBackend.console(QUEUES);
            recovered = VhostUserServer.adopt(sock, second, VhostUserServer.Options.defaults(), Fd.adopt(cp.sockets[0]),
                    Fd.adopt(cp.sockets[1]), cp.replay, true);
            cp.taken();
            assertEquals(9, second.running(3).firstAvailIndex(), "the ring resumes after the last completed chain");
            assertEquals(first.ackedFeatures(), second.ackedFeatures());
        } finally {
            if (recovered != null) {
                recovered.close();
            }
            old.close();
        }
    }

    @Test
    void withoutRecoveryTheReplayedBaseIsUsed() throws Exception {
        Path sock = dir.resolve("nr.sock");
        LastCheckpoint cp = new LastCheckpoint();
        VhostUserServer old = new VhostUserServer(sock, RecordingBackend.console(QUEUES)).watchSessions(cp).start();
        VhostUserServer adopted = null;
        try (TestFrontend fe = TestFrontend.connect(sock, QUEUES, 12)) {
            fe.startQueue(1, 0x1000, 0x2000, 0x3000, 64, 5);
            fe.guestRam().set(ValueLayout.JAVA_SHORT_UNALIGNED, 0x3000 + 2, (short) 9);
            RecordingBackend second = RecordingBackend.console(QUEUES);
            fe.getConfig(0, 4); // a round trip: every earlier message was handled and told
            adopted = VhostUserServer.adopt(sock, second, VhostUserServer.Options.defaults(), Fd.adopt(cp.sockets[0]),
                    Fd.adopt(cp.sockets[1]), cp.replay, false);
            cp.taken();
            assertEquals(5, second.running(1).firstAvailIndex());
        } finally {
            if (adopted != null) {
                adopted.close();
            }
            old.close();
        }
    }

    @Test
    void aResumedSuspensionRestartsTheRingsAndLosesNoMessage() throws Exception {
        Path sock = dir.resolve("re.sock");
        RecordingBackend backend = RecordingBackend.console(QUEUES);
        try (VhostUserServer server = new VhostUserServer(sock, backend).start();
             TestFrontend fe = TestFrontend.connect(sock, QUEUES, 12)) {
            fe.startQueue(2, 0x1000, 0x2000, 0x3000, 64);
            assertTrue(backend.awaitEvent("startQueue 2", WAIT));
            VhostUserServer.Suspension s = server.suspend(WAIT);
            backend.clearEvents();
            // Sent while suspended: waits in the socket.
            fe.send(Request.SET_VRING_ENABLE.code, Codec.VERSION, Codec.vringState(2, 0));
            s.resume();
            assertTrue(backend.awaitEvent("stopQueue 2", WAIT), "the message sent meanwhile is handled after the resume");
            assertEquals(List.of("startQueue 2", "stopQueue 2"), backend.events(),
                    "the ring restarted first, then the waiting message stopped it");
        }
    }

    @Test
    void aServerWithoutAFrontendCanBeSuspendedToo() throws Exception {
        Path sock = dir.resolve("idle.sock");
        try (VhostUserServer server = new VhostUserServer(sock, RecordingBackend.console(QUEUES)).start()) {
            VhostUserServer.Suspension s = server.suspend(WAIT);
            assertEquals(-1, s.connectionFd());
            assertTrue(s.replay().isEmpty());
            s.resume();
            try (TestFrontend fe = TestFrontend.connect(sock, QUEUES, 12)) {
                assertEquals(QUEUES, fe.queueNum(), "the resumed server accepts frontends");
            }
        }
    }
}
