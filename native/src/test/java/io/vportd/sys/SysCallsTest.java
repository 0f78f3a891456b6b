package io.vportd.sys;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SysCallsTest {

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

    private static MemorySegment bytes(Arena arena, String s) {
        return arena.allocateFrom(s, StandardCharsets.US_ASCII).asSlice(0, s.length());
    }

    @Test
    void sameOpenFileTellsEventfdsApartWhereFstatCannot() throws Exception {
        try (Fd a = EventFd.create(0, 0); Fd b = EventFd.create(0, 0); Fd aDup = Io.dup(a.fd())) {
            assertEquals(Io.fileId(a.fd()), Io.fileId(b.fd()), "eventfds share one anonymous inode");
            assertTrue(Io.sameOpenFile(a.fd(), aDup.fd()), "a duplicate is the same open file");
            assertFalse(Io.sameOpenFile(a.fd(), b.fd()), "two eventfds are different open files");
            assertThrows(NativeException.class, () -> Io.sameOpenFile(a.fd(), 1_000_000));
        }
    }

    @Test
    void eventfdSignalAndDrain() throws Exception {
        try (Fd efd = EventFd.create(0, EventFd.EFD_NONBLOCK)) {
            assertEquals(-Errno.EAGAIN, EventFd.drain(efd.fd()));
            assertEquals(8, EventFd.signal(efd.fd()));
            assertEquals(8, EventFd.signal(efd.fd()));
            assertEquals(8, EventFd.write(efd.fd(), 5));
            assertEquals(7, EventFd.drain(efd.fd()));
            assertEquals(-Errno.EAGAIN, EventFd.drain(efd.fd()));
            assertEquals(0, EventFd.wake(efd.fd()));
            assertEquals(0, EventFd.wake(efd.fd()));
            assertEquals(2, EventFd.drain(efd.fd()));
        }
        assertEquals(-Errno.EBADF, EventFd.wake(-1));
    }

    @Test
    void epollReportsPipeReadiness() throws Exception {
        Fd[] p = Io.pipe();
        try (Fd r = p[0]; Fd w = p[1]; Fd ep = Epoll.create(); Arena arena = Arena.ofConfined()) {
            MemorySegment events = Epoll.allocateEvents(arena, 4);
            assertEquals(0, Epoll.ctl(ep.fd(), Epoll.EPOLL_CTL_ADD, r.fd(), Epoll.EPOLLIN, 0x1234_5678_9abcL));
            assertEquals(0, Epoll.poll(ep.fd(), events, 4, 0), "nothing written yet");
            MemorySegment b = bytes(arena, "x");
            assertEquals(1, Io.write(w.fd(), b.address(), 1));
            assertEquals(1, Epoll.poll(ep.fd(), events, 4, 5000));
            assertEquals(Epoll.EPOLLIN, Epoll.eventMask(events, 0) & Epoll.EPOLLIN);
            assertEquals(0x1234_5678_9abcL, Epoll.eventData(events, 0));
            w.close();
            MemorySegment in = arena.allocate(4);
            assertEquals(1, Io.read(r.fd(), in.address(), 4));
            assertEquals(0, Io.read(r.fd(), in.address(), 4), "EOF after writer closed");
            assertEquals(1, Epoll.poll(ep.fd(), events, 4, 5000));
            assertTrue((Epoll.eventMask(events, 0) & Epoll.EPOLLHUP) != 0);
            assertEquals(0, Epoll.ctl(ep.fd(), Epoll.EPOLL_CTL_DEL, r.fd(), 0, 0));
            assertEquals(-Errno.ENOENT, Epoll.ctl(ep.fd(), Epoll.EPOLL_CTL_DEL, r.fd(), 0, 0));
            assertEquals(-Errno.EINVAL, Epoll.poll(ep.fd(), events, 5, 0), "max beyond the array");
        }
    }

    @Test
    void memfdPassedOverSocketPairMapsSameBytes() throws Exception {
        Fd[] sp = UnixSockets.pair();
        try (Fd a = sp[0]; Fd b = sp[1]; Fd memfd = MemFd.create("test-guest");
             Arena scratch = Arena.ofConfined()) {
            MemFd.truncate(memfd.fd(), 1 << 16);
            assertEquals(1 << 16, MemFd.size(memfd.fd()));
            MemorySegment msg = bytes(scratch, "hello");
            assertEquals(5, UnixSockets.sendWithFds(a.fd(), msg, 5, memfd.fd()));
            MemorySegment in = scratch.allocate(16);
            int[] fds = new int[4];
            assertEquals(5, UnixSockets.recvWithFds(b.fd(), in, 16, fds));
            assertEquals("hello", new String(in.asSlice(0, 5).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII));
            assertTrue(fds[0] >= 0);
            assertEquals(-1, fds[1]);
            try (Fd received = Fd.adopt(fds[0]);
                 Arena m1 = Arena.ofConfined(); Arena m2 = Arena.ofConfined()) {
                assertNotEquals(memfd.fd(), received.fd());
                MemorySegment mine = MemFd.mapShared(memfd.fd(), 0, 1 << 16, m1);
                MemorySegment theirs = MemFd.mapShared(received.fd(), 4096, 4096, m2);
                mine.set(ValueLayout.JAVA_LONG, 4096 + 8, 0x0102_0304_0506_0708L);
                assertEquals(0x0102_0304_0506_0708L, theirs.get(ValueLayout.JAVA_LONG, 8));
                theirs.set(ValueLayout.JAVA_INT, 100, 42);
                assertEquals(42, mine.get(ValueLayout.JAVA_INT, 4096 + 100));
            }
        }
    }

    @Test
    void recvWithFdsClosesEverythingWhenTooMany() throws Exception {
        Fd[] sp = UnixSockets.pair();
        Fd[] p = Io.pipe();
        try (Fd a = sp[0]; Fd b = sp[1]; Fd r = p[0]; Fd w = p[1]; Arena scratch = Arena.ofConfined()) {
            long base = FdCount.now();
            MemorySegment msg = bytes(scratch, "z");
            assertEquals(1, UnixSockets.sendWithFds(a.fd(), msg, 1, r.fd(), w.fd()));
            int[] one = new int[1];
            assertEquals(-Errno.EMSGSIZE, UnixSockets.recvWithFds(b.fd(), scratch.allocate(4), 4, one));
            assertEquals(-1, one[0]);
            assertEquals(base, FdCount.now(), "received descriptors were closed");
        }
    }

    @Test
    void sendWithFdsNeedsData() throws Exception {
        Fd[] sp = UnixSockets.pair();
        try (Fd a = sp[0]; Fd b = sp[1]; Arena scratch = Arena.ofConfined()) {
            assertEquals(-Errno.EINVAL, UnixSockets.sendWithFds(a.fd(), scratch.allocate(1), 0, b.fd()));
        }
    }

    @Test
    void errnoIsNamedForBindInMissingDirectory() {
        Path missing = dir.resolve("no-such-dir").resolve("x.sock");
        NativeException e = assertThrows(NativeException.class, () -> UnixSockets.listen(missing, 1));
        assertEquals(Errno.ENOENT, e.errno());
        assertEquals("bind(" + missing + ")", e.call());
        assertEquals("bind(" + missing + "): No such file or directory (errno 2)", e.getMessage());
    }

    @Test
    void bindTwiceIsAddressInUse() throws Exception {
        Path sock = dir.resolve("a.sock");
        try (Fd l = UnixSockets.listen(sock, 4)) {
            NativeException e = assertThrows(NativeException.class, () -> UnixSockets.listen(sock, 1));
            assertEquals(Errno.EADDRINUSE, e.errno());
            assertTrue(e.getMessage().endsWith("Address already in use (errno 98)"), e.getMessage());
        }
    }

    @Test
    void listenConnectAcceptAndModes() throws Exception {
        Path sock = dir.resolve("l.sock");
        try (Fd l = UnixSockets.listen(sock, 4); Arena arena = Arena.ofConfined()) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(sock)));
            assertEquals(-Errno.EAGAIN, acceptNonBlockingProbe(l));
            try (Fd c = UnixSockets.connect(sock)) {
                int s = Sockets.accept(l.fd(), true);
                assertTrue(s >= 0, "accept: " + s);
                try (Fd server = Fd.adopt(s)) {
                    assertTrue(Io.isNonBlocking(server.fd()));
                    assertFalse(Io.isNonBlocking(c.fd()));
                    MemorySegment buf = arena.allocate(8);
                    assertEquals(-Errno.EAGAIN, Io.read(server.fd(), buf.address(), 8));
                    assertEquals(0, Sockets.shutdown(c.fd(), Sockets.SHUT_WR));
                    assertEquals(0, Io.read(server.fd(), buf.address(), 8), "EOF after shutdown");
                }
            }
            Files.delete(sock);
            NativeException e = assertThrows(NativeException.class, () -> UnixSockets.connect(sock));
            assertEquals(Errno.ENOENT, e.errno());
        }
    }

    private static int acceptNonBlockingProbe(Fd listener) throws NativeException {
        Io.setNonBlocking(listener.fd(), true);
        try {
            return Sockets.accept(listener.fd(), false);
        } finally {
            Io.setNonBlocking(listener.fd(), false);
        }
    }

    @Test
    void connectToDeadSocketIsRefused() throws Exception {
        Path sock = dir.resolve("dead.sock");
        UnixSockets.listen(sock, 1).close();
        NativeException e = assertThrows(NativeException.class, () -> UnixSockets.connect(sock));
        assertEquals(Errno.ECONNREFUSED, e.errno());
    }

    @Test
    void readvWritevScatterGather() throws Exception {
        Fd[] sp = UnixSockets.pair();
        try (Fd a = sp[0]; Fd b = sp[1]; Arena arena = Arena.ofConfined()) {
            MemorySegment p1 = bytes(arena, "abc");
            MemorySegment p2 = bytes(arena, "defgh");
            MemorySegment iov = arena.allocate(2L * Io.IOVEC_BYTES, 8);
            iov.set(ValueLayout.JAVA_LONG, 0, p1.address());
            iov.set(ValueLayout.JAVA_LONG, 8, 3);
            iov.set(ValueLayout.JAVA_LONG, 16, p2.address());
            iov.set(ValueLayout.JAVA_LONG, 24, 5);
            assertEquals(8, Io.writev(a.fd(), iov.address(), 2));
            MemorySegment q1 = arena.allocate(5);
            MemorySegment q2 = arena.allocate(3);
            MemorySegment iov2 = arena.allocate(2L * Io.IOVEC_BYTES, 8);
            iov2.set(ValueLayout.JAVA_LONG, 0, q1.address());
            iov2.set(ValueLayout.JAVA_LONG, 8, 5);
            iov2.set(ValueLayout.JAVA_LONG, 16, q2.address());
            iov2.set(ValueLayout.JAVA_LONG, 24, 3);
            assertEquals(8, Io.readv(b.fd(), iov2.address(), 2));
            assertEquals("abcde", new String(q1.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII));
            assertEquals("fgh", new String(q2.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII));
            assertEquals(-Errno.EBADF, Io.writev(-1, iov.address(), 2));
        }
    }

    @Test
    void fdClosesExactlyOnceAndRelease() throws Exception {
        Fd efd = EventFd.create(0, 0);

        efd.close();
        efd.close();
        assertEquals(-1, efd.fd());
        Fd other = EventFd.create(0, 0);
        int raw = other.release();
        other.close(); // no effect: ownership handed on
        assertEquals(8, EventFd.signal(raw));
        assertEquals(0, Io.close(raw));
        assertThrows(IllegalArgumentException.class, () -> Fd.adopt(-1));
    }

    @Test
    void openCreatesAndMmapRejectsBadLength() throws Exception {
        Path f = dir.resolve("f.bin");
        try (Fd fd = Io.open(f, Io.O_RDWR | Io.O_CREAT | Io.O_EXCL, 0640); Arena arena = Arena.ofConfined()) {
            assertTrue(Files.exists(f));
            MemorySegment b = bytes(arena, "data");
            assertEquals(4, Io.write(fd.fd(), b.address(), 4));
            NativeException e = assertThrows(NativeException.class, () -> MemFd.mapShared(fd.fd(), 0, 0, arena));
            assertEquals(Errno.EINVAL, e.errno());
        }
        NativeException e = assertThrows(NativeException.class,
                () -> Io.open(f, Io.O_RDWR | Io.O_CREAT | Io.O_EXCL, 0640));
        assertEquals(Errno.EEXIST, e.errno());
        assertEquals(Arrays.asList("f.bin"), Arrays.asList(dir.toFile().list()));
    }

    @Test
    void mappingIsUnmappedWhenArenaCloses() throws Exception {
        try (Fd memfd = MemFd.create("unmap")) {
            MemFd.truncate(memfd.fd(), 4096);
            Arena arena = Arena.ofShared();
            MemorySegment m = MemFd.mapShared(memfd.fd(), 0, 4096, arena);
            long addr = m.address();
            assertTrue(mapped(addr));
            arena.close();
            assertFalse(mapped(addr), "munmap ran on arena close");
            assertThrows(IllegalStateException.class, () -> m.get(ValueLayout.JAVA_BYTE, 0));
        }
    }

    private static boolean mapped(long addr) throws Exception {
        String hex = Long.toHexString(addr);
        for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
            if (line.startsWith(hex + "-")) {
                return true;
            }
        }
        return false;
    }

    @Test
    void ptyRawModeAndWindowSize() throws Exception {
        Terminal.Pty pty = Terminal.openPty();
        try (Fd master = pty.master();
             Fd slave = Io.open(Path.of(pty.slavePath()), Io.O_RDWR | Io.O_NOCTTY, 0)) {
            assertTrue(pty.slavePath().startsWith("/dev/pts/"), pty.slavePath());
            assertTrue(Terminal.isatty(slave.fd()));
            Terminal.setWindowSize(master.fd(), 132, 43);
            int ws = Terminal.windowSize(slave.fd());
            assertEquals(132, Terminal.windowCols(ws));
            assertEquals(43, Terminal.windowRows(ws));
            byte[] saved = Terminal.enterRawMode(slave.fd());
            assertFalse(Arrays.equals(saved, Terminal.tcgetattr(slave.fd())), "raw mode changed attributes");
            Terminal.tcsetattr(slave.fd(), saved);
            assertArrayEquals(saved, Terminal.tcgetattr(slave.fd()));
        }
        try (Fd efd = EventFd.create(0, 0)) {
            assertFalse(Terminal.isatty(efd.fd()));
            assertEquals(-Errno.ENOTTY, Terminal.windowSize(efd.fd()));
        }
    }

    @Test
    void memfdSeals() throws Exception {
        try (Fd memfd = MemFd.create("seals"); Fd efd = EventFd.create(0, 0)) {
            MemFd.truncate(memfd.fd(), 8192);
            assertEquals(0, MemFd.seals(memfd.fd()));
            MemFd.addSeals(memfd.fd(), MemFd.F_SEAL_SHRINK | MemFd.F_SEAL_GROW);
            assertEquals(MemFd.F_SEAL_SHRINK | MemFd.F_SEAL_GROW, MemFd.seals(memfd.fd()));
            NativeException e = assertThrows(NativeException.class, () -> MemFd.truncate(memfd.fd(), 4096));
            assertEquals(Errno.EPERM, e.errno());
            assertEquals(-Errno.EINVAL, MemFd.seals(efd.fd()));
        }
    }

    @Test
    void errnoNames() {
        assertEquals("EAGAIN", Errno.name(-Errno.EAGAIN));
        assertEquals("Connection refused", Errno.describe(Errno.ECONNREFUSED));
        assertEquals("E999", Errno.name(999));
    }
}
