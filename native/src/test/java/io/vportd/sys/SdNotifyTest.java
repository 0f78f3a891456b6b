package io.vportd.sys;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link SdNotify} against a real AF_UNIX datagram socket standing where systemd's would. */
class SdNotifyTest {

    @TempDir
    Path dir;

    private long fdsBefore;

    @BeforeEach
    void countFds() {
        fdsBefore = FdCount.now();
    }

    @AfterEach
    void noLeak() {
        assertEquals(fdsBefore, FdCount.now(), "open descriptors before and after the test");
    }

    /** One received notification: its text and the descriptors that came with it (owned by the test). */
    private record Received(String text, int[] fds) {
    }

    private static Received receive(Fd socket) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(4096);
            int[] fds = new int[UnixSockets.MAX_RECV_FDS];
            long n = UnixSockets.recvWithFds(socket.fd(), buf, buf.byteSize(), fds);
            assertTrue(n > 0, "recvmsg: " + n);
            byte[] text = buf.asSlice(0, n).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            return new Received(new String(text, StandardCharsets.UTF_8), Arrays.stream(fds).filter(f -> f >= 0).toArray());
        }
    }

    private static void assertNothingQueued(Fd socket) throws NativeException {
        Io.setNonBlocking(socket.fd(), true);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(64);
            assertEquals(-Errno.EAGAIN, UnixSockets.recvWithFds(socket.fd(), buf, 64, new int[4]), "a message was sent");
        }
    }

    private String abstractName() {
        return "@vportd-sdnotify-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
    }

    @Test
    void readyAndStatusReachAPathSocket() throws Exception {
        String path = dir.resolve("notify").toString();
        try (Fd manager = UnixSockets.bindDatagram(path)) {
            SdNotify n = SdNotify.fromEnvironment(Map.of(SdNotify.ENV_NOTIFY_SOCKET, path));
            assertTrue(n.enabled());
            assertTrue(n.ready("serving 3 ports"));
            assertEquals(new Received("READY=1\nSTATUS=serving 3 ports", new int[0]).text(), receive(manager).text());
            assertTrue(n.status("handing over"));
            assertEquals("STATUS=handing over", receive(manager).text());
            assertTrue(n.mainPid(4242));
            assertEquals("MAINPID=4242", receive(manager).text());
            assertTrue(n.stopping());
            assertEquals("STOPPING=1", receive(manager).text());
            assertTrue(n.ready());
            assertEquals("READY=1", receive(manager).text());
        }
    }

    @Test
    void storedMemfdArrivesOverAnAbstractSocketAsTheSameFile() throws Exception {
        String name = abstractName();
        try (Fd manager = UnixSockets.bindDatagram(name); Fd memfd = MemFd.create("state"); Arena arena = Arena.ofConfined()) {
            MemFd.truncate(memfd.fd(), 4096);
            MemorySegment mine = MemFd.mapShared(memfd.fd(), 0, 4096, arena);
            mine.setString(0, "state record v1", StandardCharsets.US_ASCII);

            assertTrue(SdNotify.forAddress(name).storeFds("vportd.state", false, memfd.fd()));
            Received r = receive(manager);
            assertEquals("FDSTORE=1\nFDNAME=vportd.state\nFDPOLL=0", r.text());
            assertEquals(1, r.fds().length);
            try (Fd got = Fd.adopt(r.fds()[0]); Arena theirs = Arena.ofConfined()) {
                assertNotEquals(memfd.fd(), got.fd(), "a new descriptor, not a number");
                assertEquals(Io.fileId(memfd.fd()), Io.fileId(got.fd()), "the same file (fstat device and inode)");
                MemorySegment seen = MemFd.mapShared(got.fd(), 0, 4096, theirs);
                assertEquals("state record v1", seen.getString(0, StandardCharsets.US_ASCII));
            }
        }
    }

    @Test
    void severalDescriptorsUnderOneNameAndPolling() throws Exception {
        String path = dir.resolve("notify").toString();
        Fd[] pair = UnixSockets.pair();
        try (Fd manager = UnixSockets.bindDatagram(path); Fd a = pair[0]; Fd b = pair[1]; Fd efd = EventFd.create(0, 0)) {
            assertTrue(SdNotify.forAddress(path).storeFds("conn", true, a.fd(), efd.fd()));
            Received r = receive(manager);
            assertEquals("FDSTORE=1\nFDNAME=conn", r.text(), "polled: no FDPOLL line");
            assertEquals(2, r.fds().length);
            try (Fd got0 = Fd.adopt(r.fds()[0]); Fd got1 = Fd.adopt(r.fds()[1])) {
                assertEquals(Io.fileId(a.fd()), Io.fileId(got0.fd()));
                assertEquals(Io.fileId(efd.fd()), Io.fileId(got1.fd()));
                assertNotEquals(Io.fileId(b.fd()), Io.fileId(got0.fd()), "the ids tell the two ends apart");
            }
        }
    }

    @Test
    void removeSendsTheNameAlone() throws Exception {
        String path = dir.resolve("notify").toString();
        try (Fd manager = UnixSockets.bindDatagram(path)) {
            assertTrue(SdNotify.forAddress(path).removeFds("pty.3"));
            Received r = receive(manager);
            assertEquals("FDSTOREREMOVE=1\nFDNAME=pty.3", r.text());
            assertArrayEquals(new int[0], r.fds());
        }
    }

    @Test
    void withoutNotifySocketNothingIsSent() throws Exception {
        for (SdNotify n : new SdNotify[] {SdNotify.fromEnvironment(Map.of()), SdNotify.forAddress(""), SdNotify.forAddress(null)}) {
            assertFalse(n.enabled());
            assertFalse(n.ready());
            assertFalse(n.status("x"));
            assertFalse(n.removeFds("x"));
            try (Fd memfd = MemFd.create("x")) {
                assertFalse(n.storeFds("x", false, memfd.fd()));
            }
        }
    }

    @Test
    void descriptorNamesFollowSystemdsRule() {
        for (String ok : new String[] {"a", "vhost.conn-1", "with space", "=~!#$%&'()*+,-./;<>?@[]^_`{|}", "x".repeat(255)}) {
            assertTrue(SdNotify.isValidFdName(ok), ok);
        }
        for (String bad : new String[] {null, "", "a:b", ":", "tab\t", "nl\nFDSTOREREMOVE=1", "del\u007f", "\u00e9t\u00e9", "nul\0", "x".repeat(256)}) {
            assertFalse(SdNotify.isValidFdName(bad), String.valueOf(bad));
        }
    }

    @Test
    void invalidInputIsRefusedBeforeAnythingIsSent() throws Exception {
        String path = dir.resolve("notify").toString();
        try (Fd manager = UnixSockets.bindDatagram(path); Fd memfd = MemFd.create("x")) {
            SdNotify n = SdNotify.forAddress(path);
            assertThrows(IllegalArgumentException.class, () -> n.storeFds("a:b", false, memfd.fd()));
            assertThrows(IllegalArgumentException.class, () -> n.storeFds("ok", false));
            assertThrows(IllegalArgumentException.class, () -> n.removeFds("x".repeat(256)));
            assertThrows(IllegalArgumentException.class, () -> n.status("two\nREADY=1"));
            assertThrows(IllegalArgumentException.class, () -> n.mainPid(0));
            assertNothingQueued(manager);
        }
    }

    @Test
    void unreachableManagerIsANativeException() {
        SdNotify n = SdNotify.forAddress(dir.resolve("nobody").toString());
        NativeException e = assertThrows(NativeException.class, n::ready);
        assertEquals(Errno.ENOENT, e.errno());
        NativeException e2 = assertThrows(NativeException.class, SdNotify.forAddress(abstractName())::ready);
        assertEquals(Errno.ECONNREFUSED, e2.errno());
    }
}
