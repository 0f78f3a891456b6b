package io.vportd.vhost;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.Io;
import io.vportd.sys.UnixSockets;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads and writes whole vhost-user messages on a blocking stream socket, with SCM_RIGHTS
 * descriptors wrapped in {@link Fd}s the moment they arrive. One instance per connection and
 * thread (it owns a native buffer).
 */
public final class Wire implements AutoCloseable {

    /** Most descriptors accepted with one message (SET_MEM_TABLE needs 8). */
    public static final int MAX_FDS = 8;

    private final int socket;
    // Shared, not confined: after a live hand-over the wire is made on one thread and used on the server's.
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buf = arena.allocate(Codec.HEADER_SIZE + Codec.MAX_PAYLOAD, 8);
    private final int[] fdScratch = new int[MAX_FDS];
    private final VhostStats stats;

    public Wire(int socket) {
        this(socket, new VhostStats());
    }

    /** Framing errors (bad header, descriptor flood, truncated message) count as rejected messages. */
    public Wire(int socket, VhostStats stats) {
        this.socket = socket;
        this.stats = stats;
    }

    /**
     * Reads the next message. Returns null on a clean end of stream before a header.
     *
     * @throws VhostProtocolException malformed header, too many descriptors, truncated message
     * @throws IOException            the socket failed
     */
    public Session.Message receive() throws IOException {
        List<Fd> fds = new ArrayList<>();
        boolean ok = false;
        try {
            long got = fill(0, Codec.HEADER_SIZE, fds, true);
            if (got == 0) {
                ok = true;
                return null;
            }
            byte[] hdr = buf.asSlice(0, Codec.HEADER_SIZE).toArray(ValueLayout.JAVA_BYTE);
            Codec.Header h = Codec.decodeHeader(hdr);
            Codec.validateHeader(h);
            int size = h.size();
            if (size > 0) {
                fill(Codec.HEADER_SIZE, size, fds, false);
            }
            byte[] payload = buf.asSlice(Codec.HEADER_SIZE, size).toArray(ValueLayout.JAVA_BYTE);
            Session.Message m = new Session.Message(h, payload, fds.toArray(new Fd[0]));
            ok = true;
            return m;
        } catch (VhostProtocolException e) {
            stats.rejectedMessages.incrementAndGet();
            throw e;
        } finally {
            if (!ok) {
                fds.forEach(Fd::closeQuietly);
            }
        }
    }

    /** Reads exactly {@code len} bytes at {@code off}; returns 0 only for EOF before any byte when allowed. */
    private long fill(long off, long len, List<Fd> fds, boolean eofAllowed) throws IOException {
        long done = 0;
        while (done < len) {
            long r = UnixSockets.recvWithFds(socket, buf.asSlice(off + done), len - done, fdScratch);
            for (int f : fdScratch) {
                if (f >= 0) {
                    fds.add(Fd.adopt(f));
                }
            }
            if (r == -Errno.EMSGSIZE) {
                throw new VhostProtocolException("message carries more than " + MAX_FDS + " file descriptors");
            }
            if (r < 0) {
                throw new NativeException("recvmsg(vhost-user socket)", (int) -r);
            }
            if (r == 0) {
                if (done == 0 && eofAllowed) {
                    return 0;
                }
                throw new VhostProtocolException("connection closed in the middle of a message (" + done + " of " + len + " bytes)");
            }
            done += r;
        }
        return done;
    }

    /** Writes a whole message (no descriptors). */
    public void send(byte[] message) throws IOException {
        if (message.length > buf.byteSize()) {
            throw new IOException("reply of " + message.length + " bytes is too large");
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(message.length);
            MemorySegment.copy(message, 0, out, ValueLayout.JAVA_BYTE, 0, message.length);
            long done = 0;
            while (done < message.length) {
                long r = Io.write(socket, out.address() + done, message.length - done);
                if (r < 0) {
                    throw new NativeException("write(vhost-user socket)", (int) -r);
                }
                done += r;
            }
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
