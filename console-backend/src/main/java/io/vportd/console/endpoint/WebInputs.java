package io.vportd.console.endpoint;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where the web console writes host input for ports with the {@code web} endpoint: one pipe write
 * end per port id, registered by {@link WebEndpoint#start} (data-plane thread) and written by the
 * web console's thread. Process-wide, keyed by port id, because vportd serves one device per
 * process (a second device would key by device too).
 */
public final class WebInputs {

    private static final ConcurrentHashMap<Integer, Input> INPUTS = new ConcurrentHashMap<>();

    private WebInputs() {
    }

    static void register(int port, Input input) {
        INPUTS.put(port, input);
    }

    static void unregister(int port, Input input) {
        INPUTS.remove(port, input);
    }

    /** The input of port {@code port}, or null when it has no {@code web} endpoint. */
    public static Input of(int port) {
        return INPUTS.get(port);
    }

    /**
     * A pipe's non-blocking write end. {@link #write} and {@link #close} exclude each other, so a
     * write never reaches a descriptor number that was closed and reused.
     */
    public static final class Input {

        /** Bytes one write may carry (a pipe takes 64 KiB by default). */
        public static final int MAX_WRITE = 16 * 1024;
        private final Fd fd;
        private final Arena arena = Arena.ofShared();
        private final MemorySegment buffer = arena.allocate(MAX_WRITE);
        private boolean closed;

        Input(Fd fd) {
            this.fd = fd;
        }

        /**
         * Writes what the pipe takes now, never waiting: bytes written (possibly fewer than
         * {@code len} when the guest does not read), or -1 when the port is gone.
         */
        public synchronized int write(byte[] b, int off, int len) {
            if (closed) {
                return -1;
            }
            int n = Math.min(len, MAX_WRITE);
            MemorySegment.copy(b, off, buffer, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, n);
            long w = Io.write(fd.fd(), buffer.address(), n);
            if (w == -Errno.EAGAIN) {
                return 0;
            }
            return w < 0 ? -1 : (int) w;
        }

        synchronized void close() {
            if (!closed) {
                closed = true;
                fd.closeQuietly();
                arena.close();
            }
        }
    }
}
