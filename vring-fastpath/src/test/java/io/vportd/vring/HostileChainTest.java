package io.vportd.vring;

import io.vportd.vring.testing.RingDriver;
import io.vportd.vring.testing.RingDriver.Buffer;
import io.vportd.vring.testing.RingDriver.Used;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.ToIntFunction;
import java.util.stream.Stream;

import static io.vportd.vring.testing.RingDriver.F_INDIRECT;
import static io.vportd.vring.testing.RingDriver.F_NEXT;
import static io.vportd.vring.testing.RingDriver.F_WRITE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Malformed rings a hostile guest can build. Each case publishes one bad chain; the device must
 * consume it (used length 0), count it under the right reason, not throw, and go on serving good
 * chains afterwards. Grow this table with every bug.
 */
class HostileChainTest {

    /**
     * @param setup publishes the hostile chain and returns its head (the used id expected)
     */
    record Case(String name, Direction dir, int size, int regions, ToIntFunction<RingDriver> setup,
                ChainError expected) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static int raw(RingDriver d, long addr, int len, int flags) {
        int i = d.takeDescriptor();
        d.pokeDescriptor(i, addr, len, flags, 0);
        d.publishHead(i);
        return i;
    }

    /** A one-descriptor chain pointing at an indirect table of {@code entries} slots (filled by the caller). */
    private static int indirect(RingDriver d, long tableGpa, int tableLen, int flags) {
        return raw(d, tableGpa, tableLen, F_INDIRECT | flags);
    }

    static Stream<Case> cases() {
        Direction R = Direction.DEVICE_READS;
        Direction W = Direction.DEVICE_WRITES;
        return Stream.of(
                new Case("next loop of two", R, 8, 1, d -> {
                    Buffer b = d.allocate(16);
                    int x = d.takeDescriptor();
                    int y = d.takeDescriptor();
                    d.pokeDescriptor(x, b.gpa(), 16, F_NEXT, y);
                    d.pokeDescriptor(y, b.gpa(), 16, F_NEXT, x);
                    d.publishHead(x);
                    return x;
                }, ChainError.CHAIN_TOO_LONG),
                new Case("descriptor pointing at itself", R, 8, 1, d -> {
                    Buffer b = d.allocate(16);
                    int x = d.takeDescriptor();
                    d.pokeDescriptor(x, b.gpa(), 16, F_NEXT, x);
                    d.publishHead(x);
                    return x;
                }, ChainError.CHAIN_TOO_LONG),
                new Case("zero-length self loop", R, 8, 1, d -> {
                    int x = d.takeDescriptor();
                    d.pokeDescriptor(x, 0, 0, F_NEXT, x);
                    d.publishHead(x);
                    return x;
                }, ChainError.CHAIN_TOO_LONG),
                new Case("next beyond the table", R, 8, 1, d -> {
                    Buffer b = d.allocate(16);
                    int x = d.takeDescriptor();
                    d.pokeDescriptor(x, b.gpa(), 16, F_NEXT, 8);
                    d.publishHead(x);
                    return x;
                }, ChainError.NEXT_OUT_OF_RANGE),
                new Case("address above guest memory", R, 8, 1,
                        d -> raw(d, d.memoryEnd() + 4096, 64, 0), ChainError.ADDRESS_NOT_MAPPED),
                new Case("address below guest memory", R, 8, 1,
                        d -> raw(d, 0x1000, 64, 0), ChainError.ADDRESS_NOT_MAPPED),
                new Case("user address instead of guest physical", R, 8, 1,
                        d -> raw(d, RingDriver.USER_BASE + 0x10000, 64, 0), ChainError.ADDRESS_NOT_MAPPED),
                new Case("length running past the end of memory", R, 8, 1,
                        d -> raw(d, d.memoryEnd() - 100, 200, 0), ChainError.ADDRESS_NOT_MAPPED),
                new Case("length running past the last of two regions", R, 8, 2,
                        d -> raw(d, d.memoryEnd() - 100, 101, 0), ChainError.ADDRESS_NOT_MAPPED),
                new Case("address range wrapping past 2^64", R, 8, 1,
                        d -> raw(d, -16L, 64, 0), ChainError.ADDRESS_NOT_MAPPED),
                new Case("writable descriptor on a transmit queue", R, 8, 1,
                        d -> raw(d, d.allocate(8).gpa(), 8, F_WRITE), ChainError.WRONG_DIRECTION),
                new Case("readable descriptor on a receive queue", W, 8, 1,
                        d -> raw(d, d.allocate(8).gpa(), 8, 0), ChainError.WRONG_DIRECTION),
                new Case("mixed out and in chain on a transmit queue", R, 8, 1,
                        d -> d.addChain(new Buffer[] {d.allocate(8)}, new Buffer[] {d.allocate(8)}),
                        ChainError.WRONG_DIRECTION),
                new Case("zero-length descriptor of the wrong direction", W, 8, 1,
                        d -> raw(d, 0, 0, 0), ChainError.WRONG_DIRECTION),
                new Case("one descriptor of 2^31 bytes", R, 8, 1,
                        d -> raw(d, d.allocate(8).gpa(), Integer.MIN_VALUE, 0), ChainError.TOTAL_LENGTH_OVERFLOW),
                new Case("one descriptor of 2^32-1 bytes", R, 8, 1,
                        d -> raw(d, d.allocate(8).gpa(), -1, 0), ChainError.TOTAL_LENGTH_OVERFLOW),
                new Case("lengths adding up past 2^31-1", R, 2048, 1, d -> {
                    // 1100 indirect entries over the same 2 MiB buffer: 2 GiB after 1024 of them.
                    Buffer b = d.allocate(2 << 20);
                    Buffer t = d.allocate(16 * 1100, 16);
                    for (int i = 0; i < 1100; i++) {
                        d.pokeIndirectDescriptor(t.gpa(), i, b.gpa(), b.length(), i < 1099 ? F_NEXT : 0, i + 1);
                    }
                    return indirect(d, t.gpa(), t.length(), 0);
                }, ChainError.TOTAL_LENGTH_OVERFLOW),
                new Case("indirect inside indirect", R, 8, 1, d -> {
                    Buffer inner = d.allocate(16, 16);
                    d.pokeIndirectDescriptor(inner.gpa(), 0, d.allocate(8).gpa(), 8, 0, 0);
                    Buffer outer = d.allocate(16, 16);
                    d.pokeIndirectDescriptor(outer.gpa(), 0, inner.gpa(), 16, F_INDIRECT, 0);
                    return indirect(d, outer.gpa(), 16, 0);
                }, ChainError.NESTED_INDIRECT),
                new Case("indirect with NEXT", R, 8, 1, d -> {
                    Buffer t = d.allocate(16, 16);
                    d.pokeIndirectDescriptor(t.gpa(), 0, d.allocate(8).gpa(), 8, 0, 0);
                    int x = d.takeDescriptor();
                    int y = d.takeDescriptor();
                    d.pokeDescriptor(x, t.gpa(), 16, F_INDIRECT | F_NEXT, y);
                    d.pokeDescriptor(y, d.allocate(8).gpa(), 8, 0, 0);
                    d.publishHead(x);
                    return x;
                }, ChainError.INDIRECT_WITH_NEXT),
                new Case("indirect table of 24 bytes", R, 8, 1,
                        d -> indirect(d, d.allocate(32, 16).gpa(), 24, 0), ChainError.INDIRECT_BAD_LENGTH),
                new Case("indirect table of 0 bytes", R, 8, 1,
                        d -> indirect(d, d.allocate(32, 16).gpa(), 0, 0), ChainError.INDIRECT_BAD_LENGTH),
                new Case("indirect table of 32769 entries", R, 8, 1,
                        d -> indirect(d, d.allocate(32, 16).gpa(), 16 * 32769, 0), ChainError.INDIRECT_BAD_LENGTH),
                new Case("indirect table outside guest memory", R, 8, 1,
                        d -> indirect(d, d.memoryEnd() + 0x10000, 32, 0), ChainError.INDIRECT_NOT_MAPPED),
                new Case("indirect table running past guest memory", R, 8, 1,
                        d -> indirect(d, d.memoryEnd() - 16, 32, 0), ChainError.INDIRECT_NOT_MAPPED),
                new Case("indirect table loop", R, 8, 1, d -> {
                    Buffer b = d.allocate(8);
                    Buffer t = d.allocate(32, 16);
                    d.pokeIndirectDescriptor(t.gpa(), 0, b.gpa(), 8, F_NEXT, 1);
                    d.pokeIndirectDescriptor(t.gpa(), 1, b.gpa(), 8, F_NEXT, 0);
                    return indirect(d, t.gpa(), 32, 0);
                }, ChainError.CHAIN_TOO_LONG),
                new Case("indirect next beyond its table", R, 8, 1, d -> {
                    Buffer b = d.allocate(8);
                    Buffer t = d.allocate(32, 16);
                    d.pokeIndirectDescriptor(t.gpa(), 0, b.gpa(), 8, F_NEXT, 2);
                    d.pokeIndirectDescriptor(t.gpa(), 1, b.gpa(), 8, 0, 0);
                    return indirect(d, t.gpa(), 32, 0);
                }, ChainError.NEXT_OUT_OF_RANGE),
                new Case("wrong direction inside an indirect table", W, 8, 1, d -> {
                    Buffer t = d.allocate(16, 16);
                    d.pokeIndirectDescriptor(t.gpa(), 0, d.allocate(8).gpa(), 8, 0, 0);
                    return indirect(d, t.gpa(), 16, F_WRITE);
                }, ChainError.WRONG_DIRECTION),
                new Case("more region pieces than the queue size", R, 2, 2, d -> {
                    Buffer a = d.bufferAtRegionEnd(0, 8, 4);
                    Buffer b = d.bufferAtRegionEnd(0, 8, 4);
                    return d.addChain(new Buffer[] {a, b}, new Buffer[0]);
                }, ChainError.TOO_MANY_SEGMENTS));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void badChainIsConsumedCountedAndTheQueueGoesOn(Case k) {
        try (RingDriver d = new RingDriver(k.size(), false, 4L << 20, k.regions())) {
            SplitQueue q = d.newDeviceQueue(k.dir());
            try (Chain c = q.newChain()) {
                int head = k.setup().applyAsInt(d);
                int r = assertDoesNotThrow(() -> q.pop(c));
                assertEquals(SplitQueue.BAD_CHAIN, r);
                assertEquals(k.expected(), q.lastError());
                assertEquals(1, q.stats().badChains(k.expected()));
                assertEquals(1, q.stats().badChains());
                assertEquals(0, q.stats().chains());
                assertEquals(0, c.segmentCount());
                assertFalse(q.isBroken());
                q.publishUsed();
                Used u = d.pollUsed();
                assertEquals(head, u.id());
                assertEquals(0, u.length());
                assertNull(d.pollUsed());
                expectGoodChainAfterwards(d, q, c);
            }
        }
    }

    private static void expectGoodChainAfterwards(RingDriver d, SplitQueue q, Chain c) {
        int head;
        if (q.direction() == Direction.DEVICE_READS) {
            head = d.addOutBuffer(new byte[] {42});
        } else {
            head = d.addInBuffer(1);
        }
        assertEquals(SplitQueue.POPPED, q.pop(c));
        assertEquals(head, c.head());
        assertEquals(1, c.totalLength());
        if (c.isWritable()) {
            c.copyIn(new byte[] {42}, 0, 1);
        }
        q.pushUsed(head, c.isWritable() ? 1 : 0);
        q.publishUsed();
        Used u = d.pollUsed();
        assertEquals(head, u.id());
        if (c.isWritable()) {
            assertArrayEquals(new byte[] {42}, u.data());
        }
    }

    @Test
    void badChainsAreLoggedNamingQueueAndReasonRateLimited() {
        java.util.logging.Logger jul = java.util.logging.Logger.getLogger("io.vportd.vring");
        List<String> lines = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Handler h = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                lines.add(r.getMessage());
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        jul.addHandler(h);
        try (RingDriver d = new RingDriver(8, false)) {
            SplitQueue q = d.newDeviceQueue(7, Direction.DEVICE_READS, new QueueStats());
            try (Chain c = q.newChain()) {
                for (int i = 0; i < 100; i++) {
                    d.publishHead(8 + i);
                    assertEquals(SplitQueue.BAD_CHAIN, q.pop(c));
                }
            }
            assertEquals(100, q.stats().badChains(ChainError.HEAD_OUT_OF_RANGE), "every one counted");
            assertTrue(!lines.isEmpty() && lines.size() <= 10, lines.size() + " lines logged");
            assertTrue(lines.get(0).contains("queue 7") && lines.get(0).contains("head 8")
                    && lines.get(0).contains(ChainError.HEAD_OUT_OF_RANGE.text()), lines.get(0));
        } finally {
            jul.removeHandler(h);
        }
    }

    @Test
    void headBeyondTheRingIsSkippedWithoutUsedEntry() {
        for (int bad : new int[] {8, 9, 0xFFFF}) {
            try (RingDriver d = new RingDriver(8, false)) {
                SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
                try (Chain c = q.newChain()) {
                    d.publishHead(bad);
                    assertEquals(SplitQueue.BAD_CHAIN, q.pop(c));
                    assertEquals(ChainError.HEAD_OUT_OF_RANGE, q.lastError());
                    assertEquals(1, q.stats().badChains(ChainError.HEAD_OUT_OF_RANGE));
                    assertEquals(1, q.nextAvail(), "the entry is consumed");
                    assertFalse(q.publishUsed(), "no used entry for an id the driver never had");
                    assertEquals(0, d.pendingUsed());
                    expectGoodChainAfterwards(d, q, c);
                }
            }
        }
    }

    @Test
    void availIndexJumpBreaksOnlyThatQueue() {
        try (RingDriver d = new RingDriver(8, false); RingDriver other = new RingDriver(8, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            SplitQueue q2 = other.newDeviceQueue(Direction.DEVICE_READS);
            try (Chain c = q.newChain(); Chain c2 = q2.newChain()) {
                d.addOutBuffer(new byte[] {1});
                assertEquals(SplitQueue.POPPED, q.pop(c));
                d.setAvailIdx(d.availIdx() + 9); // 9 ahead of nextAvail with 8 entries
                assertEquals(SplitQueue.BROKEN, q.pop(c));
                assertTrue(q.isBroken());
                assertEquals(1, q.stats().badChains(ChainError.AVAIL_INDEX_JUMP));
                assertEquals(SplitQueue.EMPTY, q.pop(c), "a broken queue does nothing");
                assertFalse(q.hasAvailable());
                assertFalse(q.enableNotifications());
                assertEquals(1, q.stats().badChains(), "counted once");

                int h = other.addOutBuffer(new byte[] {2});
                assertEquals(SplitQueue.POPPED, q2.pop(c2));
                assertEquals(h, c2.head());
                assertEquals(0, q2.stats().badChains());
            }
        }
    }

    @Test
    void availIndexJumpNoticedOutsidePopAlsoBreaksTheQueue() {
        for (int via = 0; via < 2; via++) {
            try (RingDriver d = new RingDriver(8, via == 1)) {
                SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
                try (Chain c = q.newChain()) {
                    d.setAvailIdx(100);
                    boolean seen = via == 0 ? q.hasAvailable() : q.enableNotifications();
                    assertFalse(seen, "a broken queue offers nothing");
                    assertTrue(q.isBroken());
                    assertEquals(SplitQueue.EMPTY, q.pop(c), "and pop must not walk the garbage");
                    assertEquals(0, q.nextAvail());
                    assertEquals(1, q.stats().badChains(ChainError.AVAIL_INDEX_JUMP));
                }
            }
        }
    }

    @Test
    void exactlyFullRingIsNotAJump() {
        try (RingDriver d = new RingDriver(4, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            try (Chain c = q.newChain()) {
                for (int i = 0; i < 4; i++) {
                    d.addOutBuffer(new byte[] {(byte) i});
                }
                for (int i = 0; i < 4; i++) {
                    assertEquals(SplitQueue.POPPED, q.pop(c));
                }
                assertEquals(SplitQueue.EMPTY, q.pop(c));
                assertFalse(q.isBroken());
            }
        }
    }

    @Test
    void zeroLengthDescriptorsContributeNothing() {
        try (RingDriver d = new RingDriver(8, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            try (Chain c = q.newChain()) {
                Buffer b = d.allocate(5);
                d.write(b.gpa(), new byte[] {1, 2, 3, 4, 5});
                int x = d.takeDescriptor();
                int y = d.takeDescriptor();
                int z = d.takeDescriptor();
                // A zero-length descriptor's address is never used, so even a wild one is fine.
                d.pokeDescriptor(x, 0xdead_0000_0000L, 0, F_NEXT, y);
                d.pokeDescriptor(y, b.gpa(), 5, F_NEXT, z);
                d.pokeDescriptor(z, b.gpa(), 0, 0, 0);
                d.publishHead(x);
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(1, c.segmentCount());
                assertEquals(5, c.totalLength());

                int only = d.takeDescriptor();
                d.pokeDescriptor(only, 0, 0, 0, 0);
                d.publishHead(only);
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(0, c.segmentCount());
                assertEquals(0, c.iovCount());
                assertEquals(0, q.stats().badChains());
            }
        }
    }

    @Test
    void chainOfExactlyQueueSizeIsAccepted() {
        try (RingDriver d = new RingDriver(4, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            try (Chain c = q.newChain()) {
                int head = d.addOutChain(new byte[] {1}, new byte[] {2}, new byte[] {3}, new byte[] {4});
                assertEquals(SplitQueue.POPPED, q.pop(c));
                assertEquals(head, c.head());
                assertEquals(4, c.segmentCount());
            }
        }
    }

    @Test
    void descriptorsOutsideMemoryAreRefusedAfterTheTableChanges() {
        try (RingDriver d = new RingDriver(4, false)) {
            SplitQueue q = d.newDeviceQueue(Direction.DEVICE_READS);
            try (Chain c = q.newChain()) {
                q.setMemory(GuestMemory.empty());
                int head = d.addOutBuffer(new byte[] {1});
                assertEquals(SplitQueue.BAD_CHAIN, q.pop(c));
                assertEquals(ChainError.ADDRESS_NOT_MAPPED, q.lastError());
                q.publishUsed();
                assertEquals(head, d.pollUsed().id());
            }
        }
    }

    // ---- construction checks (set-up path: exceptions are the contract here) ----

    @Test
    void ringSizeMustBeAPowerOfTwoInRange() {
        for (int size : new int[] {0, 3, 6, 100, 65536, -4}) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment ring = a.allocate(1 << 20, 4096);
                assertThrows(IllegalArgumentException.class, () -> new SplitQueue(0, size, ring, ring, ring,
                        false, Direction.DEVICE_READS, new QueueStats()), "size " + size);
            }
        }
        try (RingDriver d = new RingDriver(6, false)) {
            assertThrows(IllegalArgumentException.class, () -> d.newDeviceQueue(Direction.DEVICE_READS));
        }
    }

    @Test
    void ringsMustBeAlignedNativeAndLargeEnough() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment m = a.allocate(1 << 16, 4096);
            MemorySegment desc = m.asSlice(0, 16 * 8);
            MemorySegment avail = m.asSlice(4096, SplitQueue.availBytes(8, true));
            MemorySegment used = m.asSlice(8192, SplitQueue.usedBytes(8, true));
            QueueStats s = new QueueStats();
            Direction r = Direction.DEVICE_READS;
            assertDoesNotThrow(() -> new SplitQueue(0, 8, desc, avail, used, true, r, s));
            List<Runnable> bad = List.of(
                    () -> new SplitQueue(0, 8, m.asSlice(8, 16 * 8), avail, used, true, r, s),
                    () -> new SplitQueue(0, 8, desc, m.asSlice(4097, 32), used, true, r, s),
                    () -> new SplitQueue(0, 8, desc, avail, m.asSlice(8194, 80), true, r, s),
                    () -> new SplitQueue(0, 8, m.asSlice(0, 16 * 8 - 1), avail, used, true, r, s),
                    () -> new SplitQueue(0, 8, desc, m.asSlice(4096, SplitQueue.availBytes(8, false)), used, true, r, s),
                    () -> new SplitQueue(0, 8, desc, avail, m.asSlice(8192, SplitQueue.usedBytes(8, false)), true, r, s),
                    () -> new SplitQueue(0, 8, MemorySegment.ofArray(new byte[256]), avail, used, true, r, s));
            for (int i = 0; i < bad.size(); i++) {
                Runnable b = bad.get(i);
                assertThrows(IllegalArgumentException.class, b::run, "case " + i);
            }
            assertNull(SplitQueue.ringProblem(8, desc, avail, used, true));
            assertTrue(SplitQueue.ringProblem(8, desc, m.asSlice(4097, 32), used, true).contains("not 2-byte aligned"));
            assertTrue(SplitQueue.ringProblem(8, desc, avail, null, true).contains("used ring"));
            assertTrue(SplitQueue.ringProblem(12, desc, avail, used, true).contains("power of two"));
            // Without EVENT_IDX the trailing event fields are not needed.
            assertDoesNotThrow(() -> new SplitQueue(0, 8, desc, m.asSlice(4096, SplitQueue.availBytes(8, false)),
                    m.asSlice(8192, SplitQueue.usedBytes(8, false)), false, r, s));
        }
    }
}
