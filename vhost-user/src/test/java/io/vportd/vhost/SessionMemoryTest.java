package io.vportd.vhost;

import io.vportd.sys.Fd;
import io.vportd.sys.FdCount;
import io.vportd.sys.EventFd;
import io.vportd.sys.MemFd;
import io.vportd.sys.UnixSockets;
import io.vportd.vhost.testing.RecordingBackend;
import io.vportd.vring.GuestMemory;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Guest memory as QEMU's q35 lays it out: one memfd, RAM below and above 4 GiB at different offsets. */
class SessionMemoryTest {

    private static final long U = SessionHarness.UBASE;

    /** True when host address {@code addr} lies in some mapping of this process. */
    static boolean mapped(long addr) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
            String range = line.substring(0, line.indexOf(' '));
            int dash = range.indexOf('-');
            long lo = Long.parseUnsignedLong(range.substring(0, dash), 16);
            long hi = Long.parseUnsignedLong(range.substring(dash + 1), 16);
            if (Long.compareUnsigned(addr, lo) >= 0 && Long.compareUnsigned(addr, hi) < 0) {
                return true;
            }
        }
        return false;
    }

    private static long[] addresses(GuestMemory m) {
        long[] a = new long[m.regionCount()];
        for (int i = 0; i < a.length; i++) {
            a[i] = m.region(i).mapping().address();
        }
        return a;
    }

    @Test
    void twoRegionsOfOneMemfdWithOffsets() throws Exception {
        long fdsBefore = FdCount.now();
        long[] regionAddrs;
        RecordingBackend backend = RecordingBackend.console(2);
        try (Fd ram = SessionHarness.memfd(1 << 20); Arena view = Arena.ofConfined()) {
            MemorySegment file = MemFd.mapShared(ram.fd(), 0, 1 << 20, view);
            try (SessionHarness h = new SessionHarness(backend)) {
                h.send(Request.GET_FEATURES, new byte[0]);
                h.send(Request.SET_PROTOCOL_FEATURES.code, Codec.VERSION, Codec.u64(Session.PROTOCOL_FEATURES_OFFERED));
                // Low RAM: gpa 0, file offset 0, 512 KiB. High RAM: gpa 4 GiB, file offset 512 KiB + 2 KiB
                // (not page aligned), 256 KiB.
                Codec.MemRegion low = new Codec.MemRegion(0, 512 << 10, U, 0);
                Codec.MemRegion high = new Codec.MemRegion(1L << 32, 256 << 10, U + (1L << 30), (512 << 10) + 2048);
                h.send(Request.ADD_MEM_REG, Codec.singleRegion(low), Fd.adopt(dup(ram)));
                h.send(Request.ADD_MEM_REG, Codec.singleRegion(high), Fd.adopt(dup(ram)));
                GuestMemory m = backend.memory();
                assertEquals(2, m.regionCount());
                regionAddrs = addresses(m);
                file.set(ValueLayout.JAVA_LONG, 4096, 0x1111L);
                file.set(ValueLayout.JAVA_LONG, (512 << 10) + 2048 + 64, 0x2222L);
                assertEquals(0x1111L, m.sliceGuest(4096, 8).get(ValueLayout.JAVA_LONG, 0));
                assertEquals(0x2222L, m.sliceGuest((1L << 32) + 64, 8).get(ValueLayout.JAVA_LONG, 0));
                assertEquals(0x2222L, m.sliceUser(U + (1L << 30) + 64, 8).get(ValueLayout.JAVA_LONG, 0));
                assertNull(m.sliceGuest((1L << 32) + (256 << 10) - 4, 8), "past the end of the high region");
                // A ring in high memory, then the region goes away under it: the session refuses.
                h.send(Request.SET_VRING_NUM, Codec.vringState(0, 16));
                h.send(Request.SET_VRING_ADDR, Codec.vringAddr(new Codec.VringAddr(0, 0,
                        U + (1L << 30), U + (1L << 30) + 0x2000, U + (1L << 30) + 0x1000, 0)));
                h.send(Request.SET_VRING_KICK, Codec.u64(0), EventFd.create(0, 0));
                h.send(Request.SET_VRING_ENABLE, Codec.vringState(0, 1));
                assertNotNull(backend.running(0));
                h.send(Request.REM_MEM_REG, Codec.singleRegion(low));
                assertNotNull(backend.running(0), "ring in the remaining region restarted");
                assertEquals(1, backend.memory().regionCount());
                h.send(Request.ADD_MEM_REG, Codec.singleRegion(low), Fd.adopt(dup(ram)));
                assertEquals(2, backend.memory().regionCount());
                VhostProtocolException e = org.junit.jupiter.api.Assertions.assertThrows(VhostProtocolException.class,
                        () -> h.send(Request.REM_MEM_REG, Codec.singleRegion(high)));
                assertTrue(e.getMessage().contains("outside guest memory"), e.getMessage());
            }
        }
        assertEquals(fdsBefore, FdCount.now(), "descriptors");
        for (long a : regionAddrs) {
            assertFalse(mapped(a), "region at 0x" + Long.toHexString(a) + " unmapped");
        }
        assertFalse(backend.events().isEmpty());
    }

    @Test
    void ringWaitsWhileAllMemoryIsGoneAndRestartsWhenItReturns() throws Exception {
        RecordingBackend backend = RecordingBackend.console(2);
        try (SessionHarness h = new SessionHarness(backend).negotiated(); Fd ram = SessionHarness.memfd(1 << 20)) {
            h.send(Request.SET_VRING_NUM, Codec.vringState(1, 8));
            h.send(Request.SET_VRING_ADDR, Codec.vringAddr(new Codec.VringAddr(1, 0, U + 0x1000, U + 0x3000, U + 0x2000, 0)));
            h.send(Request.SET_VRING_KICK, Codec.u64(1), EventFd.create(0, 0));
            h.send(Request.SET_VRING_ENABLE, Codec.vringState(1, 1));
            assertNotNull(backend.running(1));
            Codec.MemRegion only = new Codec.MemRegion(0, SessionHarness.RAM, U, 0);
            h.send(Request.REM_MEM_REG, Codec.singleRegion(only));
            assertNull(backend.running(1), "no memory, no ring");
            assertEquals(0, backend.memory().regionCount());
            h.send(Request.ADD_MEM_REG, Codec.singleRegion(only), Fd.adopt(dup(ram)));
            assertNotNull(backend.running(1), "ring restarted when memory came back");
        }
    }

    @Test
    void setMemTableReplacesAndUnmapsTheOldTable() throws Exception {
        RecordingBackend backend = RecordingBackend.console(2);
        long[] first;
        long[] second;
        try (SessionHarness h = new SessionHarness(backend).negotiated()) {
            first = addresses(backend.memory());
            assertTrue(mapped(first[0]));
            h.send(Request.SET_MEM_TABLE, Codec.memTable(List.of(new Codec.MemRegion(0, 1 << 20, U, 0),
                    new Codec.MemRegion(1L << 32, 1 << 20, U + (1L << 32), 0))),
                    SessionHarness.memfd(1 << 20), SessionHarness.memfd(1 << 20));
            assertEquals(2, backend.memory().regionCount());
            second = addresses(backend.memory());
            assertFalse(mapped(first[0]), "old table unmapped after setMemory returned");
            assertTrue(mapped(second[0]) && mapped(second[1]));
        }
        assertFalse(mapped(second[0]) || mapped(second[1]), "unmapped at session end");
    }

    private static int dup(Fd fd) throws Exception {
        // A second descriptor for the same memfd, as SCM_RIGHTS would deliver.
        Fd[] sp = UnixSockets.pair();
        try (Fd a = sp[0]; Fd b = sp[1]; Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(1);
            assertEquals(1, UnixSockets.sendWithFds(a.fd(), one, 1, fd.fd()));
            int[] got = new int[1];
            assertEquals(1, UnixSockets.recvWithFds(b.fd(), one, 1, got));
            return got[0];
        }
    }
}
