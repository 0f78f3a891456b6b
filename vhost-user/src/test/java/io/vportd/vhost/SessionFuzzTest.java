package io.vportd.vhost;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vportd.sys.Fd;
import io.vportd.sys.FdCount;
import io.vportd.vhost.testing.RecordingBackend;

import java.io.IOException;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Arbitrary message sequences through header/shape validation and the session state machine.
 * The session may refuse a message (VhostProtocolException ends it) but must never throw
 * anything else, never start a queue twice (the recording backend checks), and never leak a
 * descriptor. In `mvn verify` this runs the stored inputs as a short regression; set
 * JAZZER_FUZZ=1 to fuzz.
 */
class SessionFuzzTest {

    private static final int[] CODES = {1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 21, 24, 25, 34, 36, 37, 38, 6, 99};
    private static final long U = SessionHarness.UBASE;

    private static int plausibleLength(int request, FuzzedDataProvider data) {
        Request r = Request.of(request);
        if (r == null) {
            return data.consumeInt(0, 64);
        }
        return switch (r) {
            case SET_MEM_TABLE -> Codec.MEM_TABLE_HEADER + Codec.MEM_REGION_SIZE * data.consumeInt(0, 9);
            case GET_CONFIG, SET_CONFIG -> Codec.CONFIG_HEADER + data.consumeInt(0, 16);
            default -> data.consumeInt(r.minPayload, r.maxPayload);
        };
    }

    /** Payload bytes, steered towards in-range values some of the time so deeper paths run. */
    private static byte[] payload(int request, int len, FuzzedDataProvider data) {
        byte[] p = Arrays.copyOf(data.consumeBytes(len), len);
        if (len == 0 || !data.consumeBoolean()) {
            return p;
        }
        Request r = Request.of(request);
        if (r == null) {
            return p;
        }
        java.nio.ByteBuffer bb = java.nio.ByteBuffer.wrap(p).order(java.nio.ByteOrder.nativeOrder());
        switch (r) {
            case SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ENABLE, GET_VRING_BASE -> {
                if (len >= 8) {
                    bb.putInt(0, data.consumeInt(0, 4));
                    bb.putInt(4, r == Request.SET_VRING_NUM ? 1 << data.consumeInt(0, 16) : data.consumeInt(0, 1));
                }
            }
            case SET_VRING_ADDR -> {
                if (len >= 40) {
                    bb.putInt(0, data.consumeInt(0, 4));
                    bb.putLong(8, U + (data.consumeLong(0, 1 << 20) & ~15L));
                    bb.putLong(16, U + (data.consumeLong(0, 1 << 20) & ~3L));
                    bb.putLong(24, U + (data.consumeLong(0, 1 << 20) & ~1L));
                }
            }
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR -> {
                if (len >= 8) {
                    bb.putLong(0, data.consumeInt(0, 4) | (data.consumeBoolean() ? Codec.VRING_NOFD : 0));
                }
            }
            case ADD_MEM_REG, REM_MEM_REG -> {
                if (len >= 40) {
                    bb.putLong(8, data.consumeLong(0, 4) << 20);
                    bb.putLong(16, 1L << data.consumeInt(12, 17));
                    bb.putLong(24, U + (data.consumeLong(0, 4) << 20));
                    bb.putLong(32, data.consumeBoolean() ? 0 : 4096);
                }
            }
            case SET_FEATURES -> {
                if (len >= 8) {
                    bb.putLong(0, RecordingBackend.console(4).deviceFeatures() & data.consumeLong());
                }
            }
            case SET_PROTOCOL_FEATURES -> {
                if (len >= 8) {
                    bb.putLong(0, Session.PROTOCOL_FEATURES_OFFERED & data.consumeLong());
                }
            }
            case GET_CONFIG, SET_CONFIG -> {
                if (len >= Codec.CONFIG_HEADER) {
                    bb.putInt(0, data.consumeInt(0, 12));
                    bb.putInt(4, len - Codec.CONFIG_HEADER);
                    bb.putInt(8, data.consumeInt(0, 1));
                }
            }
            default -> {
            }
        }
        return p;
    }

    @FuzzTest(maxDuration = "60s")
    void sessionRefusesOrHandlesEverything(FuzzedDataProvider data) throws IOException {
        long before = FdCount.now();
        RecordingBackend backend = RecordingBackend.console(4);
        Session session = new Session(backend, m -> { });
        try {
            for (int step = 0; step < 48 && data.remainingBytes() > 0; step++) {
                int request = data.consumeBoolean() ? data.pickValue(CODES) : data.consumeInt();
                int flags = data.consumeBoolean() ? (data.consumeBoolean() ? Codec.VERSION : Codec.VERSION | Codec.FLAG_NEED_REPLY)
                        : data.consumeInt();
                int len = data.consumeBoolean() ? plausibleLength(request, data) : data.consumeInt(0, 300);
                byte[] p = payload(request, len, data);
                int nfds = data.consumeInt(0, 3);
                Fd[] fds = new Fd[nfds];
                for (int i = 0; i < nfds; i++) {
                    fds[i] = data.consumeBoolean() ? SessionHarness.memfd(1 << 20) : SessionHarness.eventfds(1)[0];
                }
                try {
                    session.handle(new Session.Message(new Codec.Header(request, flags, p.length), p, fds));
                } catch (VhostProtocolException refused) {
                    break;
                }
            }
        } finally {
            session.close();
        }
        // Only an increase is ours: in fuzzing mode Jazzer's own threads close files concurrently.
        long after = FdCount.now();
        assertTrue(after <= before, "descriptors leaked: " + before + " before, " + after + " after");
    }
}
