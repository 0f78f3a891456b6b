package io.vportd.vhost;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vportd.sys.Fd;
import io.vportd.vhost.testing.RecordingBackend;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Raw frontend bytes, cut into wire messages (12-byte header, then as many payload bytes as the
 * header's size field says), through the codec's checks and decoders and then a session without
 * descriptors. Invariants: header and shape checks refuse only with VhostProtocolException; a
 * header that passes promises at most {@link Codec#MAX_PAYLOAD} bytes; once a message passes the
 * shape check every decoder for its request succeeds and re-encodes to the same bytes; the
 * session refuses only with VhostProtocolException and every reply it sends is a well-formed
 * reply header with a payload within the limit. In {@code mvn verify} the stored inputs under
 * {@code CodecFuzzTestInputs/wireBytes} are replayed; {@code fuzz/run} fuzzes.
 */
class CodecFuzzTest {

    @FuzzTest(maxDuration = "30s")
    void wireBytes(byte[] wire) throws Exception {
        RecordingBackend backend = RecordingBackend.console(4);
        Session session = new Session(backend, reply -> checkReply(reply));
        try {
            int at = 0;
            while (wire.length - at >= Codec.HEADER_SIZE) {
                Codec.Header h = Codec.decodeHeader(Arrays.copyOfRange(wire, at, at + Codec.HEADER_SIZE));
                at += Codec.HEADER_SIZE;
                try {
                    Codec.validateHeader(h);
                } catch (VhostProtocolException refused) {
                    return; // the connection ends here
                }
                assertTrue(h.size() >= 0 && h.size() <= Codec.MAX_PAYLOAD, "size " + h.size());
                if (wire.length - at < h.size()) {
                    return; // short read: the connection would wait, then close
                }
                byte[] payload = Arrays.copyOfRange(wire, at, at + h.size());
                at += h.size();
                Request r = Request.of(h.request());
                try {
                    Codec.validateShape(r, h.request(), payload, 0);
                } catch (VhostProtocolException refused) {
                    return;
                }
                if (r != null) {
                    decodeAgain(r, payload);
                }
                try {
                    session.handle(new Session.Message(h, payload, new Fd[0]));
                } catch (VhostProtocolException refused) {
                    return;
                }
            }
        } finally {
            session.close();
        }
    }

    /** A payload that passed validateShape decodes, and encoding the result gives it back. */
    private static void decodeAgain(Request r, byte[] p) {
        switch (r) {
            case SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ENABLE, GET_VRING_BASE -> {
                Codec.VringState s = Codec.vringState(p);
                assertArrayEquals(Arrays.copyOf(p, 8), Codec.vringState(s.index(), s.num()));
            }
            case SET_VRING_ADDR -> assertArrayEquals(p, Codec.vringAddr(Codec.vringAddr(p)));
            case SET_MEM_TABLE -> {
                var regions = Codec.memTable(p);
                assertTrue(regions.size() >= 1 && regions.size() <= Codec.MAX_MEM_TABLE_REGIONS);
                byte[] again = Codec.memTable(regions);
                assertArrayEquals(Arrays.copyOfRange(p, Codec.MEM_TABLE_HEADER, again.length),
                        Arrays.copyOfRange(again, Codec.MEM_TABLE_HEADER, again.length));
            }
            case ADD_MEM_REG, REM_MEM_REG -> {
                Codec.MemRegion m = Codec.singleRegion(p);
                assertArrayEquals(Arrays.copyOfRange(p, 8, Codec.SINGLE_REGION_SIZE),
                        Arrays.copyOfRange(Codec.singleRegion(m), 8, Codec.SINGLE_REGION_SIZE));
            }
            case GET_CONFIG, SET_CONFIG -> {
                Codec.Config c = Codec.config(p);
                assertEquals(p.length - Codec.CONFIG_HEADER, c.data().length);
                assertEquals(c.size(), c.data().length);
            }
            default -> {
                if (p.length == 8) {
                    assertArrayEquals(p, Codec.u64(Codec.u64(p)));
                }
            }
        }
    }

    private static void checkReply(byte[] reply) {
        assertTrue(reply.length >= Codec.HEADER_SIZE, "reply of " + reply.length + " bytes");
        Codec.Header h = Codec.decodeHeader(reply);
        assertEquals(Codec.VERSION | Codec.FLAG_REPLY, h.flags(), "reply flags");
        assertEquals(reply.length - Codec.HEADER_SIZE, h.size(), "reply size field");
        assertTrue(h.size() <= Codec.MAX_PAYLOAD, "reply payload " + h.size());
    }
}
