package io.vportd.console.web;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.nio.ByteBuffer;

/**
 * What a browser (or anything that connects to {@code --web-listen}) controls: the HTTP request
 * head and the WebSocket frames after it. Arbitrary bytes, cut into arbitrary reads, go through
 * {@link HttpRequest#parse} and {@link WsFrames#poll}: nothing may throw but a refusal, nothing
 * is consumed before a frame is whole, and no payload exceeds its limit. Runs over the seed
 * corpus during {@code mvn verify}; {@code fuzz/run --target web} fuzzes it.
 */
class WebFuzzTest {

    static final int MAX = 256;

    @FuzzTest(maxDuration = "30s")
    void requestsAndFrames(FuzzedDataProvider data) {
        ByteBuffer head = ByteBuffer.allocate(HttpRequest.MAX_HEAD + 16);
        byte[] h = data.consumeBytes(data.consumeInt(0, HttpRequest.MAX_HEAD + 16));
        head.put(h);
        try {
            HttpRequest r = HttpRequest.parse(head);
            if (r != null) {
                assertTrue(r.headLength() <= h.length && r.path().startsWith("/"));
                HttpRequest.param(r.query(), "role");
                HttpRequest.cookie(r.header("cookie"), WebAuth.COOKIE);
            }
        } catch (HttpRequest.BadRequest refused) {
            assertTrue(refused.status >= 400 && refused.status < 500);
        }
        WsFrames frames = new WsFrames(MAX);
        ByteBuffer in = ByteBuffer.allocate(MAX + 14);
        while (data.remainingBytes() > 0) {
            byte[] chunk = data.consumeBytes(Math.min(in.remaining(), data.consumeInt(1, 64)));
            if (chunk.length == 0) {
                return; // the buffer is full and no frame completes: the server refuses such input (431/close)
            }
            in.put(chunk);
            in.flip();
            while (true) {
                int before = in.position();
                int op = frames.poll(in);
                if (op == WsFrames.NEED_MORE) {
                    break;
                }
                if (op < 0) {
                    return; // refused: the connection closes
                }
                assertTrue(in.position() > before, "a message consumes its frame");
                assertTrue(frames.payloadLength() <= ((op & 0x8) != 0 ? 125 : MAX));
            }
            in.compact();
        }
    }
}
