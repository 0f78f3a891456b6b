package io.vportd.console.web;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

/** The frame decoder against whole, split, fragmented and malformed client frames. */
class WsFramesTest {

    static final byte[] MASK = {0x11, 0x22, 0x33, 0x44};

    /** A client frame: masked unless {@code masked} is false; {@code lenOverride} >= 0 lies about the length. */
    static byte[] frame(int b0, byte[] payload, boolean masked, long lenOverride) {
        long len = lenOverride != -1 ? lenOverride : payload.length;
        ByteBuffer b = ByteBuffer.allocate(14 + payload.length);
        b.put((byte) b0);
        int m = masked ? 0x80 : 0;
        if (len >= 0 && len < 126) {
            b.put((byte) (m | len));
        } else if (len >= 0 && len <= 0xffff) {
            b.put((byte) (m | 126)).putShort((short) len);
        } else {
            b.put((byte) (m | 127)).putLong(len);
        }
        if (masked) {
            b.put(MASK);
        }
        for (int i = 0; i < payload.length; i++) {
            b.put((byte) (payload[i] ^ (masked ? MASK[i & 3] : 0)));
        }
        return Arrays.copyOf(b.array(), b.position());
    }

    static byte[] frame(int b0, byte[] payload) {
        return frame(b0, payload, true, -1);
    }

    static ByteBuffer in(byte[]... parts) {
        ByteBuffer b = ByteBuffer.allocate(200_000);
        for (byte[] p : parts) {
            b.put(p);
        }
        return b.flip();
    }

    @Test
    void aMaskedTextFrameIsUnmasked() {
        WsFrames f = new WsFrames(1024);
        ByteBuffer b = in(frame(0x81, "hello".getBytes(StandardCharsets.UTF_8)));
        assertEquals(WsFrames.OP_TEXT, f.poll(b));
        assertEquals("hello", new String(f.payload(), 0, f.payloadLength(), StandardCharsets.UTF_8));
        assertEquals(0, b.remaining());
    }

    @Test
    void aFrameSplitAnywhereWaitsForTheRest() {
        byte[] whole = frame(0x82, new byte[300]);
        for (int cut = 0; cut < whole.length; cut++) {
            WsFrames f = new WsFrames(1024);
            ByteBuffer b = in(Arrays.copyOf(whole, cut));
            assertEquals(WsFrames.NEED_MORE, f.poll(b), "cut at " + cut);
            assertEquals(0, b.position(), "nothing consumed before the frame is whole");
        }
    }

    @Test
    void fragmentsAreJoinedAndAPingBetweenThemComesFirst() {
        WsFrames f = new WsFrames(1024);
        ByteBuffer b = in(frame(0x02, new byte[] {1, 2}), frame(0x89, new byte[] {9}), frame(0x00, new byte[] {3}),
                frame(0x80, new byte[] {4, 5}));
        assertEquals(WsFrames.NEED_MORE, f.poll(b));
        assertEquals(WsFrames.OP_PING, f.poll(b));
        assertArrayEquals(new byte[] {9}, Arrays.copyOf(f.payload(), f.payloadLength()));
        assertEquals(WsFrames.NEED_MORE, f.poll(b));
        assertEquals(WsFrames.OP_BINARY, f.poll(b));
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5}, Arrays.copyOf(f.payload(), f.payloadLength()));
    }

    static Object[][] malformed() {
        byte[] big = new byte[2000];
        return new Object[][] {
            {"unmasked", frame(0x81, new byte[] {1}, false, -1), WsFrames.ERR_UNMASKED},
            {"reserved bit 1", frame(0xC1, new byte[] {1}), WsFrames.ERR_RESERVED_BITS},
            {"reserved bit 3", frame(0x91, new byte[] {1}), WsFrames.ERR_RESERVED_BITS},
            {"opcode 3", frame(0x83, new byte[] {1}), WsFrames.ERR_BAD_OPCODE},
            {"opcode 0xB", frame(0x8B, new byte[] {1}), WsFrames.ERR_BAD_OPCODE},
            {"ping of 126 bytes", frame(0x89, new byte[126]), WsFrames.ERR_CONTROL_TOO_LONG},
            {"a close with a negative 64-bit length (found by WebFuzzTest)",
                    frame(0x88, new byte[0], true, -150994836L), WsFrames.ERR_CONTROL_TOO_LONG},
            {"a ping with a 2^40 length", frame(0x89, new byte[0], true, 1L << 40), WsFrames.ERR_CONTROL_TOO_LONG},
            {"fragmented close", frame(0x08, new byte[] {3, (byte) 0xe8}), WsFrames.ERR_CONTROL_FRAGMENTED},
            {"frame over the limit", frame(0x82, big), WsFrames.ERR_TOO_LARGE},
            {"a 2^62-byte frame header", frame(0x82, new byte[0], true, 1L << 62), WsFrames.ERR_TOO_LARGE},
            {"a length with the top bit", frame(0x82, new byte[0], true, Long.MIN_VALUE), WsFrames.ERR_TOO_LARGE},
            {"continuation first", frame(0x80, new byte[] {1}), WsFrames.ERR_UNEXPECTED_CONTINUATION},
            {"fragments over the limit", concat(frame(0x02, new byte[900]), frame(0x80, new byte[200])),
                    WsFrames.ERR_TOO_LARGE},
            {"text inside binary", concat(frame(0x02, new byte[1]), frame(0x81, new byte[1])),
                    WsFrames.ERR_EXPECTED_CONTINUATION},
        };
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformed")
    void malformedFramesAreRefused(String what, byte[] bytes, int error) {
        WsFrames f = new WsFrames(1024);
        ByteBuffer b = in(bytes);
        int r;
        do {
            r = f.poll(b);
        } while (r == WsFrames.NEED_MORE && b.hasRemaining());
        assertEquals(error, r, what);
    }

    @Test
    void serverHeadersUseTheShortestLength() {
        for (int len : new int[] {0, 125, 126, 65535, 65536, 300_000}) {
            ByteBuffer b = ByteBuffer.allocate(16);
            WsFrames.header(b, WsFrames.OP_BINARY, len);
            assertEquals(WsFrames.headerLength(len), b.position(), "len " + len);
            assertEquals((byte) 0x82, b.get(0));
        }
    }
}
