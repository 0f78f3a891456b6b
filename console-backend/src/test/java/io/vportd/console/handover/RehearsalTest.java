package io.vportd.console.handover;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.sys.Fd;
import io.vportd.sys.UnixSockets;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The hand-over warm-ups run the real code on throw-away descriptors: a rehearsal round goes the
 * whole way (record carried over a socket pair, decoded, device built, session replayed into a
 * started vhost-user server, that server suspended and closed) without failing, and neither it nor
 * the sender's warm-up leaves a descriptor, a mapping's file or a thread behind, however often it
 * runs. A rehearsal that failed part way would only lengthen the pause in production (it is best
 * effort there), so the rounds are called directly here, where a failure throws.
 */
@Timeout(60)
class RehearsalTest {

    @Test
    void rehearsalRoundsGoTheWholeWayAndLeaveNothingOpen() throws Exception {
        Rehearsal.rehearse(); // the first round loads what stays loaded (JDK epoll, arenas, loggers)
        int fds = openDescriptors();
        List<String> threads = threadNames();
        for (int i = 0; i < 3; i++) {
            Rehearsal.rehearse();
        }
        assertEquals(fds, openDescriptors(), "descriptors open after three more rounds");
        assertEquals(threads, threadNames(), "threads alive after three more rounds");
    }

    @Test
    void afterTheRehearsalTheTakingPathLoadsNoClass() throws Exception {
        // A class loaded (or a lambda or string concatenation linked) inside the pause is code run
        // for the first time there: the rehearsal must have run every call site the taking path
        // has, from receiving the record to serving (ready, the running daemon's go, resume).
        Rehearsal.rehearse();
        Rehearsal.rehearse();
        java.lang.management.ClassLoadingMXBean classes = java.lang.management.ManagementFactory.getClassLoadingMXBean();
        try (Rehearsal.Props props = new Rehearsal.Props()) {
            HandoverState.Encoded e = props.state();
            Fd[] pair = UnixSockets.pair();
            try (HandoverLink out = new HandoverLink(pair[0]); TakeOver in = new TakeOver(new HandoverLink(pair[1]))) {
                HandoverServer.sendState(out, e, System.nanoTime());
                HandoverServer.answer(out, "go", null); // the running side's go, sent ahead: this test plays both sides
                long before = classes.getTotalLoadedClassCount();
                // What Main's --take-over runs once connected: receive, decode, build, replay, ready, resume.
                Restored r = Restored.from(in, Rehearsal.SOCKET, io.vportd.console.device.PortLogContext.DEFAULT);
                in.ready();
                r.resume(0);
                long after = classes.getTotalLoadedClassCount();
                r.handoverListener().closeQuietly();
                r.vhost().close();
                r.device().close();
                assertEquals(before, after, "classes loaded by the taking path after the rehearsal");
            }
        }
    }

    @Test
    void aReplayedSessionReachesTheDataPlaneThreadOnce() throws Exception {
        // Features, memory table and 64 ring starts: each a wait for the data-plane thread if made
        // one by one (the first of them also waits for that new thread to come up).
        try (Rehearsal.Props props = new Rehearsal.Props()) {
            HandoverState.Encoded e = props.state();
            Fd[] pair = UnixSockets.pair();
            try (HandoverLink out = new HandoverLink(pair[0]); TakeOver in = new TakeOver(new HandoverLink(pair[1]))) {
                HandoverServer.sendState(out, e, System.nanoTime());
                Restored r = Restored.from(in, Rehearsal.SOCKET, io.vportd.console.device.PortLogContext.DEFAULT);
                try {
                    assertEquals(1, r.device().dataPlane().handOffs(), "hand-offs to the data-plane thread while taking");
                } finally {
                    r.handoverListener().closeQuietly();
                    r.vhost().close();
                    r.device().close();
                }
            }
        }
    }

    @Test
    void rehearsalsOfSeveralDevicesGoTheWholeWayOnTheLoopsAndLeaveNothingOpen() throws Exception {
        try (io.vportd.console.device.EventLoop.Group loops = new io.vportd.console.device.EventLoop.Group(2, tag -> { })) {
            java.util.concurrent.atomic.AtomicInteger built = new java.util.concurrent.atomic.AtomicInteger();
            io.vportd.console.handover.RestoredDevices.Builder builder = (id, snapshot) -> {
                built.incrementAndGet();
                return new io.vportd.console.device.ConsoleDevice(snapshot, io.vportd.console.device.ConsoleDevice::adoptEndpoint,
                        io.vportd.console.device.PortLogContext.DEFAULT, loops.leastLoaded());
            };
            Rehearsal.rehearseDevices(builder);
            assertEquals(Rehearsal.DEVICES, built.get(), "every device of the record built by the daemon's builder");
            int fds = openDescriptors();
            List<String> threads = threadNames();
            for (int i = 0; i < 3; i++) {
                Rehearsal.rehearseDevices(builder);
            }
            assertEquals(fds, openDescriptors(), "descriptors open after three more rounds");
            assertEquals(threads, threadNames(), "threads alive after three more rounds");
        }
        Rehearsal.warmDevicesSender();
        int fds = openDescriptors();
        Rehearsal.warmDevicesSender();
        assertEquals(fds, openDescriptors(), "descriptors open after another warm-up of a sender of several devices");
    }

    @Test
    void theRunningSideRehearsesItsStoppingPathOnlyWhereItsLinesAreKeptOut() throws Exception {
        java.util.concurrent.atomic.AtomicInteger runs = new java.util.concurrent.atomic.AtomicInteger();
        Rehearsal.setUnheard(work -> {
            runs.incrementAndGet();
            work.run();
        });
        try {
            Rehearsal.warmSender(); // the first time loads what stays loaded
            int fds = openDescriptors();
            List<String> threads = threadNames();
            Rehearsal.warmSender();
            assertEquals(2, runs.get(), "the stopping path rehearsed through the daemon's runner each time");
            assertEquals(fds, openDescriptors(), "descriptors open after the warm-up");
            assertEquals(threads, threadNames(), "threads alive after the warm-up");
        } finally {
            Rehearsal.setUnheard(null);
        }
    }

    @Test
    void senderWarmUpLeavesNothingOpen() throws Exception {
        Rehearsal.warmSender();
        int fds = openDescriptors();
        Rehearsal.warmSender();
        assertEquals(fds, openDescriptors(), "descriptors open after another warm-up");
    }

    @Test
    void theRehearsedRecordIsAsBigAsADefaultDevice() throws Exception {
        // The rounds warm the per-port and per-ring code only if the record has a real device's shape.
        Rehearsal.Carried c = Rehearsal.carriedSample();
        try {
            HandoverState.Daemon d = c.daemon();
            assertEquals(Rehearsal.PORTS, d.device().ports().size());
            assertEquals(4 + 6 * 2 * (Rehearsal.PORTS + 1), d.replay().size(), "every ring set up and started");
            assertTrue(c.fds().size() > 2 * 2 * (Rehearsal.PORTS + 1), "kick and call descriptors for every ring");
        } finally {
            Rehearsal.closeAll(c.fds());
        }
    }

    private static int openDescriptors() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return (int) s.count();
        }
    }

    private static List<String> threadNames() {
        return Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive).map(Thread::getName)
                .filter(n -> n.startsWith("vhost-user") || n.startsWith("vportd")).sorted().toList();
    }
}
