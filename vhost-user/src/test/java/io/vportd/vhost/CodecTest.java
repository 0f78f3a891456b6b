package io.vportd.vhost;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CodecTest {

    @Test
    void headerRoundTrip() throws Exception {
        byte[] msg = Codec.message(Request.SET_VRING_NUM.code, Codec.VERSION | Codec.FLAG_NEED_REPLY,
                Codec.vringState(3, 256));
        assertEquals(Codec.HEADER_SIZE + 8, msg.length);
        Codec.Header h = Codec.decodeHeader(msg);
        assertEquals(new Codec.Header(8, Codec.VERSION | Codec.FLAG_NEED_REPLY, 8), h);
        assertTrue(h.needReply());
        Codec.validateHeader(h);
        byte[] reply = Codec.reply(11, Codec.vringState(1, 2));
        assertEquals(Codec.VERSION | Codec.FLAG_REPLY, Codec.decodeHeader(reply).flags());
        // Little-endian on the wire (x86_64 native order): request 8 is the first byte.
        assertEquals(8, msg[0]);
        assertEquals(0x9, msg[4]);
        assertEquals(8, msg[8]);
    }

    @Test
    void payloadRoundTrips() {
        assertEquals(0x8000_0001_0203_0405L, Codec.u64(Codec.u64(0x8000_0001_0203_0405L)));
        assertEquals(new Codec.VringState(7, 0xffff), Codec.vringState(Codec.vringState(7, 0xffff)));
        Codec.VringAddr a = new Codec.VringAddr(2, 1, 0x1000, 0x3000, 0x2000, 0xdead);
        byte[] ab = Codec.vringAddr(a);
        assertEquals(Codec.VRING_ADDR_SIZE, ab.length);
        assertEquals(a, Codec.vringAddr(ab));
        List<Codec.MemRegion> regions = List.of(new Codec.MemRegion(0, 1 << 20, 0x7f00_0000_0000L, 0),
                new Codec.MemRegion(1L << 32, 1 << 21, 0x7f10_0000_0000L, 1 << 20));
        byte[] mt = Codec.memTable(regions);
        assertEquals(8 + 2 * 32, mt.length);
        assertEquals(regions, Codec.memTable(mt));
        byte[] single = Codec.singleRegion(regions.get(1));
        assertEquals(Codec.SINGLE_REGION_SIZE, single.length);
        assertEquals(regions.get(1), Codec.singleRegion(single));
        byte[] cfg = Codec.config(4, 1, new byte[] {1, 2, 3});
        Codec.Config c = Codec.config(cfg);
        assertEquals(4, c.offset());
        assertEquals(3, c.size());
        assertEquals(1, c.flags());
        assertArrayEquals(new byte[] {1, 2, 3}, c.data());
    }

    @Test
    void requestNumbersMatchTheProtocol() {
        int[][] expected = {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {8, 8}, {9, 9}, {10, 10}, {11, 11}, {12, 12},
            {13, 13}, {14, 14}, {15, 15}, {16, 16}, {17, 17}, {18, 18}, {21, 21}, {24, 24}, {25, 25},
            {34, 34}, {36, 36}, {37, 37}, {38, 38}};
        for (int[] e : expected) {
            assertEquals(e[1], Request.of(e[0]).code);
        }
        assertEquals(Request.SET_BACKEND_REQ_FD, Request.of(21));
        assertEquals(Request.ADD_MEM_REG, Request.of(37));
        assertNull(Request.of(6));
        assertNull(Request.of(-1));
        assertEquals("unknown request 4294967295", Request.describe(-1));
        // BACKEND_REQ (bit 5) is not offered: vportd never sends a backend request (issue 10, item 7).
        assertEquals(0x1L | 1L << 3 | 1L << 9 | 1L << 13 | 1L << 15, Session.PROTOCOL_FEATURES_OFFERED);
    }

    @Test
    void shapeRules() throws Exception {
        Codec.validateShape(Request.SET_VRING_KICK, 12, Codec.u64(3), 1);
        Codec.validateShape(Request.SET_VRING_CALL, 13, Codec.u64(3 | Codec.VRING_NOFD), 0);
        Codec.validateShape(Request.REM_MEM_REG, 38, new byte[40], 1);
        Codec.validateShape(Request.REM_MEM_REG, 38, new byte[40], 0);
        Codec.validateShape(null, 99, new byte[100], 0);
        assertThrows(VhostProtocolException.class, () -> Codec.validateShape(null, 99, new byte[0], 1));
        assertThrows(VhostProtocolException.class,
                () -> Codec.validateShape(Request.SET_VRING_CALL, 13, Codec.u64(3 | Codec.VRING_NOFD), 1));
        // QEMU sends only the regions in use; a full 8-slot table is accepted too.
        byte[] one = Codec.memTable(List.of(new Codec.MemRegion(0, 4096, 0, 0)));
        Codec.validateShape(Request.SET_MEM_TABLE, 5, one, 1);
        byte[] padded = java.util.Arrays.copyOf(one, Codec.MEM_TABLE_MAX_PAYLOAD);
        Codec.validateShape(Request.SET_MEM_TABLE, 5, padded, 1);
    }
}
