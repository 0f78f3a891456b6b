package io.vportd.vhost;

import io.vportd.sys.Fd;
import io.vportd.sys.FdCount;
import io.vportd.vhost.testing.RecordingBackend;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every malformed message ends the session with a clear error and leaks no descriptor. */
class SessionMalformedTest {

    private static final int V = Codec.VERSION;
    private static final int NR = Codec.VERSION | Codec.FLAG_NEED_REPLY;
    private static final long U = SessionHarness.UBASE;

    /** What to send once the session is negotiated and has 1 MiB of memory. */
    interface Bad {
        void send(SessionHarness h) throws Exception;
    }

    private static Arguments bad(String name, String fragment, boolean failureAck, Bad b) {
        return Arguments.of(name, fragment, failureAck, b);
    }

    private static byte[] config(int offset, int size) {
        return Codec.config(offset, 0, new byte[size]);
    }

    private static byte[] addr(int index, long desc, long avail, long used) {
        return Codec.vringAddr(new Codec.VringAddr(index, 0, desc, used, avail, 0));
    }

    static Stream<Arguments> cases() {
        return Stream.of(
                bad("bad version", "header version 2", false,
                        h -> h.send(1, 2, new byte[0])),
                bad("reply flag from frontend", "reply flag", false,
                        h -> h.send(1, V | Codec.FLAG_REPLY, new byte[0])),
                bad("unknown header flag", "unknown header flags", false,
                        h -> h.send(3, V | 0x10, new byte[0])),
                bad("header size disagrees with payload", "header says 8", false,
                        h -> h.session.handle(new Session.Message(new Codec.Header(2, V, 8), new byte[4], new Fd[0]))),
                bad("oversized payload", "exceeds the limit", false,
                        h -> h.session.handle(new Session.Message(new Codec.Header(2, V, 5000), new byte[5000], new Fd[0]))),
                bad("payload size mismatch", "payload size 4, expected 8", false,
                        h -> h.send(Request.SET_FEATURES, new byte[4])),
                bad("too many fds", "carries 2 file descriptors, expected 0", false,
                        h -> h.send(Request.SET_OWNER, new byte[0], SessionHarness.eventfds(2))),
                bad("fd on unknown request", "carries 1 file descriptors", false,
                        h -> h.send(99, NR, new byte[0], SessionHarness.eventfds(1))),
                bad("missing kick fd", "carries 0 file descriptors, expected 1", false,
                        h -> h.send(Request.SET_VRING_KICK, Codec.u64(0))),
                bad("kick reserved bits", "reserved bits", false,
                        h -> h.send(Request.SET_VRING_KICK, Codec.u64(1L << 20), SessionHarness.eventfds(1))),
                bad("nine regions", "9 regions", false,
                        h -> {
                            byte[] p = new byte[Codec.MEM_TABLE_MAX_PAYLOAD];
                            p[0] = 9;
                            h.send(Request.SET_MEM_TABLE, p, SessionHarness.eventfds(8));
                        }),
                bad("region count vs fds", "carries 1 file descriptors, expected 2", false,
                        h -> h.send(Request.SET_MEM_TABLE, Codec.memTable(List.of(
                                new Codec.MemRegion(0, 4096, U, 0), new Codec.MemRegion(8192, 4096, U + 8192, 0))),
                                SessionHarness.memfd(8192))),
                bad("overlapping regions", "overlap", true,
                        h -> h.send(Request.SET_MEM_TABLE, Codec.memTable(List.of(
                                new Codec.MemRegion(0, 8192, U, 0), new Codec.MemRegion(4096, 4096, U + 65536, 0))),
                                SessionHarness.memfd(8192), SessionHarness.memfd(8192))),
                bad("added region overlaps", "overlap", true,
                        h -> h.send(Request.ADD_MEM_REG, Codec.singleRegion(new Codec.MemRegion(4096, 4096, 0x1000_0000L, 0)),
                                SessionHarness.memfd(4096))),
                bad("region past end of file", "past the end", true,
                        h -> h.send(Request.ADD_MEM_REG, Codec.singleRegion(new Codec.MemRegion(1L << 32, 8192, 0x1000_0000L, 0)),
                                SessionHarness.memfd(4096))),
                bad("region with zero size", "size must be", true,
                        h -> h.send(Request.ADD_MEM_REG, Codec.singleRegion(new Codec.MemRegion(1L << 32, 0, 0x1000_0000L, 0)),
                                SessionHarness.memfd(4096))),
                bad("region on a non-file fd", "past the end", true,
                        h -> h.send(Request.ADD_MEM_REG, Codec.singleRegion(new Codec.MemRegion(1L << 32, 4096, 0x1000_0000L, 0)),
                                SessionHarness.eventfds(1))),
                bad("remove unknown region", "no region", true,
                        h -> h.send(Request.REM_MEM_REG, Codec.singleRegion(new Codec.MemRegion(1L << 32, 4096, 0x1000_0000L, 0)))),
                bad("queue index out of range", "queue index 99 out of range", true,
                        h -> h.send(Request.SET_VRING_NUM, Codec.vringState(99, 64))),
                bad("kick index out of range", "queue index 200 out of range", true,
                        h -> h.send(Request.SET_VRING_KICK, Codec.u64(200), SessionHarness.eventfds(1))),
                bad("vring size not a power of two", "size 100 is not a power of two", true,
                        h -> h.send(Request.SET_VRING_NUM, Codec.vringState(0, 100))),
                bad("vring size above 32768", "size 65536", true,
                        h -> h.send(Request.SET_VRING_NUM, Codec.vringState(0, 65536))),
                bad("vring size zero", "size 0", true,
                        h -> h.send(Request.SET_VRING_NUM, Codec.vringState(0, 0))),
                bad("vring base above 16 bits", "16-bit", true,
                        h -> h.send(Request.SET_VRING_BASE, Codec.vringState(0, 0x10000))),
                bad("unaligned descriptor table", "misaligned", true,
                        h -> h.send(Request.SET_VRING_ADDR, addr(0, U + 8, U + 0x2000, U + 0x3000))),
                bad("unaligned used ring", "misaligned", true,
                        h -> h.send(Request.SET_VRING_ADDR, addr(0, U, U + 0x2000, U + 0x3002))),
                bad("ring outside memory", "outside guest memory", true,
                        h -> {
                            h.send(Request.SET_VRING_NUM, Codec.vringState(0, 256));
                            h.send(Request.SET_VRING_ADDR, addr(0, U + SessionHarness.RAM - 1024, U + 0x2000, U + 0x3000));
                        }),
                bad("ring straddling the end of memory", "outside guest memory", true,
                        h -> {
                            h.send(Request.SET_VRING_ADDR, addr(0, U, U + 0x2000, U + SessionHarness.RAM - 16));
                            h.send(Request.SET_VRING_NUM, Codec.vringState(0, 64));
                        }),
                bad("enable value 2", "expected 0 or 1", true,
                        h -> h.send(Request.SET_VRING_ENABLE, Codec.vringState(0, 2))),
                bad("config out of range", "outside the 12-byte config space", true,
                        h -> h.send(Request.SET_CONFIG, config(10, 4))),
                bad("config offset overflow", "outside the 12-byte config space", true,
                        h -> h.send(Request.SET_CONFIG, Codec.config(-1, 0, new byte[4]))),
                bad("config size field mismatch", "does not match", false,
                        h -> {
                            byte[] p = config(0, 4);
                            p[4] = 8;
                            h.send(Request.GET_CONFIG, p);
                        }),
                bad("protocol features not offered", "not offered", true,
                        h -> h.send(Request.SET_PROTOCOL_FEATURES, Codec.u64(1L << 1))),
                bad("GET_VRING_BASE out of range", "out of range", false,
                        h -> h.send(Request.GET_VRING_BASE, Codec.vringState(4, 0))),
                // issue 11.4: ranges that pass 2^64 (signed comparisons let these through)
                bad("region guest address wraps", "address range wraps", true,
                        h -> h.send(Request.ADD_MEM_REG, Codec.singleRegion(
                                new Codec.MemRegion(0xffff_ffff_ffff_f000L, 0x2000, 0x1000_0000L, 0)),
                                SessionHarness.memfd(0x2000))),
                bad("region user address wraps", "address range wraps", true,
                        h -> h.send(Request.ADD_MEM_REG, Codec.singleRegion(
                                new Codec.MemRegion(1L << 32, 0x2000, 0xffff_ffff_ffff_f000L, 0)),
                                SessionHarness.memfd(0x2000))),
                bad("memory table region wraps", "address range wraps", true,
                        h -> h.send(Request.SET_MEM_TABLE, Codec.memTable(List.of(
                                new Codec.MemRegion(0xffff_ffff_ffff_f000L, 0x2000, U, 0))),
                                SessionHarness.memfd(0x2000))),
                // issue 11.3a: a file that can shrink would fault the data plane after a truncate
                bad("unsealed memfd region", "not sealed against shrinking", true,
                        h -> h.send(Request.ADD_MEM_REG, Codec.singleRegion(new Codec.MemRegion(1L << 32, 4096, 0x1000_0000L, 0)),
                                SessionHarness.unsealedMemfd(4096))),
                bad("unsealed memfd in a table", "not sealed against shrinking", true,
                        h -> h.send(Request.SET_MEM_TABLE, Codec.memTable(List.of(new Codec.MemRegion(0, 4096, U, 0))),
                                SessionHarness.unsealedMemfd(4096))),
                // issue 11.1/11.2: kick/call/err descriptors must be eventfds
                bad("kick fd is a hung-up pipe", "not an eventfd", true,
                        h -> h.send(Request.SET_VRING_KICK, Codec.u64(0), hungUpPipe())),
                bad("call fd is a pipe", "not an eventfd", true,
                        h -> h.send(Request.SET_VRING_CALL, Codec.u64(0), hungUpPipe())),
                bad("call fd is a socket", "not an eventfd", true,
                        h -> {
                            Fd[] sp = io.vportd.sys.UnixSockets.pair();
                            sp[1].closeQuietly();
                            h.send(Request.SET_VRING_CALL, Codec.u64(1), sp[0]);
                        }),
                bad("err fd is a memfd", "not an eventfd", true,
                        h -> h.send(Request.SET_VRING_ERR, Codec.u64(0), SessionHarness.memfd(4096))),
                // issue 10.7: BACKEND_REQ is no longer offered, so its channel cannot be set up
                bad("backend request fd", "protocol feature bit 5", true,
                        h -> h.send(Request.SET_BACKEND_REQ_FD, new byte[0], SessionHarness.eventfds(1))));
    }

    /** The read end of a pipe whose write end is closed: always readable, read returns 0. */
    private static Fd hungUpPipe() throws Exception {
        Fd[] p = io.vportd.sys.Io.pipe();
        p[1].closeQuietly();
        return p[0];
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void malformedMessageEndsSessionWithClearError(String name, String fragment, boolean failureAck, Bad bad)
            throws Exception {
        long before = FdCount.now();
        RecordingBackend backend = RecordingBackend.console(4);
        try (SessionHarness h = new SessionHarness(backend).negotiated()) {
            int repliesBefore = h.replies.size();
            VhostProtocolException e = assertThrows(VhostProtocolException.class, () -> bad.send(h));
            assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' lacks '" + fragment + "'");
            if (failureAck) {
                assertTrue(h.replies.size() > repliesBefore, "a failure ack was sent");
                assertEquals(1, h.lastAck(), "the ack reports failure");
            }
            assertNull(backend.running(0));
            assertEquals(1, h.session.stats().rejectedMessages());
        }
        assertTrue(backend.events().contains("reset"));
        assertEquals(before, FdCount.now(), "no descriptor leaked");
    }

    @org.junit.jupiter.api.Test
    void unofferedFeatureBitsAreDroppedNotFatal() throws Exception {
        RecordingBackend backend = RecordingBackend.console(2);
        try (SessionHarness h = new SessionHarness(backend).negotiated()) {
            h.send(Request.SET_FEATURES, Codec.u64(1L << 40 | 1L << 32 | 1L << Codec.F_PROTOCOL_FEATURES));
            assertEquals(0, h.lastAck());
            assertEquals(1L << 32, backend.ackedFeatures(), "device sees only offered bits, without PROTOCOL_FEATURES");
            assertEquals(1, h.session.stats().unofferedFeatureAcks());
        }
    }

    @org.junit.jupiter.api.Test
    void kickWithoutFdStopsTheRingButKeepsTheSession() throws Exception {
        long before = FdCount.now();
        RecordingBackend backend = RecordingBackend.console(2);
        try (SessionHarness h = new SessionHarness(backend).negotiated()) {
            h.send(Request.SET_VRING_NUM, Codec.vringState(0, 16));
            h.send(Request.SET_VRING_ADDR, addr(0, U + 0x1000, U + 0x2000, U + 0x3000));
            h.send(Request.SET_VRING_KICK, Codec.u64(0), SessionHarness.eventfds(1));
            h.send(Request.SET_VRING_ENABLE, Codec.vringState(0, 1));
            assertEquals(16, backend.running(0).size());
            h.send(Request.SET_VRING_KICK, Codec.u64(Codec.VRING_NOFD));
            assertEquals(0, h.lastAck());
            assertNull(backend.running(0), "no kick fd: the ring is stopped");
            h.send(Request.SET_VRING_KICK, Codec.u64(0), SessionHarness.eventfds(1));
            assertEquals(16, backend.running(0).size(), "a new kick fd starts it again");
        }
        assertEquals(before, FdCount.now());
    }

    @org.junit.jupiter.api.Test
    void requestsNeedTheirProtocolFeature() throws Exception {
        long before = FdCount.now();
        try (SessionHarness h = new SessionHarness(RecordingBackend.console(2))) {
            h.send(Request.GET_FEATURES.code, V, new byte[0]);
            VhostProtocolException e = assertThrows(VhostProtocolException.class,
                    () -> h.send(Request.ADD_MEM_REG, Codec.singleRegion(new Codec.MemRegion(0, 4096, U, 0)),
                            SessionHarness.memfd(4096)));
            assertTrue(e.getMessage().contains("protocol feature bit 15"), e.getMessage());
        }
        assertEquals(before, FdCount.now());
    }

    @org.junit.jupiter.api.Test
    void withoutProtocolFeaturesRingsStartEnabledOnKick() throws Exception {
        long before = FdCount.now();
        RecordingBackend backend = RecordingBackend.console(2);
        try (SessionHarness h = new SessionHarness(backend)) {
            h.send(Request.SET_OWNER.code, V, new byte[0]);
            h.send(Request.SET_FEATURES.code, V, Codec.u64(1L << 32));
            h.send(Request.SET_MEM_TABLE.code, V, Codec.memTable(List.of(new Codec.MemRegion(0, 1 << 20, U, 0))),
                    SessionHarness.memfd(1 << 20));
            h.send(Request.SET_VRING_NUM.code, V, Codec.vringState(1, 8));
            h.send(Request.SET_VRING_ADDR.code, V, addr(1, U + 0x1000, U + 0x2000, U + 0x3000));
            assertNull(backend.running(1));
            h.send(Request.SET_VRING_KICK.code, V, Codec.u64(1), SessionHarness.eventfds(1));
            assertEquals(8, backend.running(1).size());
            assertEquals(-1, backend.running(1).callFd(), "no call fd yet");
            assertEquals(0, h.replies.size(), "no acks without REPLY_ACK");
        }
        assertEquals(before, FdCount.now());
    }

    @org.junit.jupiter.api.Test
    void refusedDescriptorsAreCounted() throws Exception {
        try (SessionHarness h = new SessionHarness(RecordingBackend.console(2)).negotiated()) {
            assertThrows(VhostProtocolException.class, () -> h.send(Request.SET_VRING_KICK, Codec.u64(0), hungUpPipe()));
            assertEquals(1, h.session.stats().refusedFds());
        }
    }

    @org.junit.jupiter.api.Test
    void rangesThatCrossTheSignBitButNotTwoToThe64AreAccepted() throws Exception {
        RecordingBackend backend = RecordingBackend.console(2);
        try (SessionHarness h = new SessionHarness(backend).negotiated()) {
            h.send(Request.ADD_MEM_REG, Codec.singleRegion(
                    new Codec.MemRegion(0x7fff_ffff_ffff_f000L, 0x2000, 0x7fff_ffff_ffff_f000L, 0)), SessionHarness.memfd(0x2000));
            assertEquals(0, h.lastAck());
            assertEquals(2, backend.memory().regionCount());
            h.send(Request.ADD_MEM_REG, Codec.singleRegion(
                    new Codec.MemRegion(0xffff_ffff_ffff_e000L, 0x2000, 0xffff_ffff_ffff_e000L, 0)), SessionHarness.memfd(0x2000));
            assertEquals(0, h.lastAck(), "a region ending exactly at 2^64 does not wrap");
        }
        assertTrue(Session.wraps(-4096L, 4097));
        assertTrue(!Session.wraps(-4096L, 4096));
    }

    @org.junit.jupiter.api.Test
    void unsealedMemoryIsAcceptedWhenAllowedAndCounted() throws Exception {
        RecordingBackend backend = RecordingBackend.console(2);
        try (SessionHarness h = new SessionHarness(backend, true).negotiated()) {
            h.send(Request.ADD_MEM_REG, Codec.singleRegion(new Codec.MemRegion(1L << 32, 4096, 0x1000_0000L, 0)),
                    SessionHarness.unsealedMemfd(4096));
            assertEquals(0, h.lastAck());
            assertEquals(2, backend.memory().regionCount());
            assertEquals(1, h.session.stats().unsealedMemoryAllowed());
        }
    }

    @org.junit.jupiter.api.Test
    void errFdIsCheckedThenClosedAtOnce() throws Exception {
        try (SessionHarness h = new SessionHarness(RecordingBackend.console(2)).negotiated()) {
            long before = FdCount.now();
            h.send(Request.SET_VRING_ERR, Codec.u64(0), SessionHarness.eventfds(1));
            assertEquals(0, h.lastAck());
            assertEquals(before, FdCount.now(), "vportd never signals an err fd, so it does not keep one");
        }
    }
}
