package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ConsoleOutputBufferTest {

    @Test
    void keepsOrderAcrossWrapAndCountsOverflow() {
        try (ConsoleOutputBuffer b = new ConsoleOutputBuffer(16)) {
            Random rnd = new Random(7);
            ByteArrayOutputStream expected = new ByteArrayOutputStream();
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            long dropped = 0;
            for (int round = 0; round < 1000; round++) {
                byte[] chunk = new byte[rnd.nextInt(10)];
                rnd.nextBytes(chunk);
                int kept = b.append(chunk, 0, chunk.length);
                expected.write(chunk, 0, kept);
                dropped += chunk.length - kept;
                drain(b, got, Math.min(b.contiguous(), rnd.nextInt(12)));
            }
            while (!b.isEmpty()) {
                drain(b, got, b.contiguous());
            }
            assertEquals(dropped, b.dropped());
            assertArrayEquals(expected.toByteArray(), got.toByteArray());
        }
    }

    private static void drain(ConsoleOutputBuffer b, ByteArrayOutputStream out, int n) {
        byte[] tmp = new byte[n];
        b.peek(tmp, 0, n);
        out.write(tmp, 0, n);
        b.consumed(n);
    }
}
