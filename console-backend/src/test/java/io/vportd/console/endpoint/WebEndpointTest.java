package io.vportd.console.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.sys.Io;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The {@code web} endpoint: a pipe the web console writes and the data plane reads, registered while the port lives. */
class WebEndpointTest {

    final List<Integer> watched = new ArrayList<>();
    final List<Integer> connected = new ArrayList<>();
    final EndpointHost host = new EndpointHost() {
        @Override public void watch(int fd, int events, int port, int role) { watched.add(fd); }
        @Override public void unwatch(int fd) { watched.remove((Integer) fd); }
        @Override public void hostConnected(int port) { connected.add(port); }
    };

    @Test
    void typedBytesReachTheInputPipeUntilThePortCloses() throws Exception {
        Endpoint e = Endpoints.create(new EndpointSpec.Web(), "port 3");
        e.open();
        e.start(host, 3);
        assertEquals(List.of(3), connected, "the host side is connected from the start");
        assertEquals(List.of(e.inputFd()), watched);
        assertTrue(e.connected() && e.discardsOutput() && e.outputFd() < 0);
        WebInputs.Input in = WebInputs.of(3);
        byte[] typed = "ls\r".getBytes(StandardCharsets.US_ASCII);
        assertEquals(3, in.write(typed, 0, 3));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(16);
            assertEquals(3, Io.read(e.inputFd(), buf.address(), 16));
            assertEquals('l', (char) buf.get(ValueLayout.JAVA_BYTE, 0));
        }
        e.close();
        assertNull(WebInputs.of(3), "a closed port takes no input");
        assertEquals(-1, in.write(typed, 0, 3), "a writer holding the old input gets -1, never a reused descriptor");
        assertTrue(watched.isEmpty());
    }

    @Test
    void aHandedOverWebPortGetsANewPipe() throws Exception {
        Endpoint e = Endpoints.adopt(new EndpointSpec.Web(), "port 4", new Handed());
        e.start(host, 4);
        WebInputs.Input in = WebInputs.of(4);
        assertEquals(1, in.write(new byte[] {'x'}, 0, 1));
        assertSame(in, WebInputs.of(4));
        e.close();
        assertNull(WebInputs.of(4));
    }

    @Test
    void aFullPipeTakesWhatItCanAndNeverWaits() throws Exception {
        Endpoint e = Endpoints.create(new EndpointSpec.Web(), "port 5");
        e.open();
        e.start(host, 5);
        try {
            WebInputs.Input in = WebInputs.of(5);
            byte[] chunk = new byte[WebInputs.Input.MAX_WRITE];
            long total = 0;
            int n;
            while ((n = in.write(chunk, 0, chunk.length)) > 0) {
                total += n;
            }
            assertEquals(0, n, "a full pipe answers 0 (EAGAIN), it does not block");
            assertTrue(total >= 4096, "the pipe took " + total);
        } finally {
            e.close();
        }
    }
}
