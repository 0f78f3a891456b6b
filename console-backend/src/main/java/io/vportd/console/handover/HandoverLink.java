package io.vportd.console.handover;

import io.vportd.sys.Epoll;
import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.sys.NativeException;
import io.vportd.sys.UnixSockets;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * One end of the hand-over connection between two vportd processes (a Unix stream socket).
 * Frames are a 4-byte length and that many bytes of JSON; descriptors travel in batches of at
 * most {@link #FDS_PER_MESSAGE}, each batch riding on a 4-byte count. Every wait has a deadline,
 * so neither side hangs on a peer that stopped.
 */
final class HandoverLink implements AutoCloseable {

    /** Largest frame accepted (the state of 511 ports with full console backlogs fits easily). */
    static final int MAX_FRAME = 64 << 20;
    static final int FDS_PER_MESSAGE = UnixSockets.MAX_RECV_FDS;

    private final Fd socket;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment word = arena.allocate(4, 4);

    HandoverLink(Fd socket) {
        this.socket = socket;
    }

    int fd() {
        return socket.fd();
    }

    void sendFrame(byte[] data) throws IOException {
        word.set(ValueLayout.JAVA_INT_UNALIGNED, 0, data.length);
        writeAll(word, 4);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(Math.max(1, data.length));
            MemorySegment.copy(data, 0, buf, ValueLayout.JAVA_BYTE, 0, data.length);
            writeAll(buf, data.length);
        }
    }

    byte[] receiveFrame(long deadline) throws IOException {
        readAll(word, 4, deadline);
        int len = word.get(ValueLayout.JAVA_INT_UNALIGNED, 0);
        if (len < 0 || len > MAX_FRAME) {
            throw new IOException("hand-over frame of " + Integer.toUnsignedString(len) + " bytes (at most " + MAX_FRAME + ")");
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(Math.max(1, len));
            readAll(buf, len, deadline);
            return buf.asSlice(0, len).toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** Sends descriptors (still the caller's) in batches. */
    void sendFds(int[] fds) throws IOException {
        for (int off = 0; off < fds.length; off += FDS_PER_MESSAGE) {
            int n = Math.min(FDS_PER_MESSAGE, fds.length - off);
            int[] batch = java.util.Arrays.copyOfRange(fds, off, off + n);
            word.set(ValueLayout.JAVA_INT_UNALIGNED, 0, n);
            long r = UnixSockets.sendWithFds(socket.fd(), word, 4, batch);
            if (r < 0) {
                throw new NativeException("sendmsg(hand-over descriptors)", (int) -r);
            }
            if (r < 4) {
                writeAll(word.asSlice(r), 4 - r);
            }
        }
    }

    /** Receives exactly {@code count} descriptors (owned by the caller; closed here on failure). */
    List<Fd> receiveFds(int count, long deadline) throws IOException {
        List<Fd> out = new ArrayList<>(count);
        int[] scratch = new int[FDS_PER_MESSAGE];
        try {
            while (out.size() < count) {
                await(deadline);
                java.util.Arrays.fill(scratch, -1);
                long r = UnixSockets.recvWithFds(socket.fd(), word, 4, scratch);
                for (int f : scratch) {
                    if (f >= 0) {
                        out.add(Fd.adopt(f));
                    }
                }
                if (r < 0) {
                    throw new NativeException("recvmsg(hand-over descriptors)", (int) -r);
                }
                if (r == 0) {
                    throw new IOException("the other process closed the hand-over connection");
                }
                if (r < 4) {
                    readAll(word.asSlice(r), 4 - r, deadline);
                }
                int n = word.get(ValueLayout.JAVA_INT_UNALIGNED, 0);
                if (n < 1 || n > FDS_PER_MESSAGE) {
                    throw new IOException("hand-over descriptor batch of " + n);
                }
            }
            if (out.size() != count) {
                throw new IOException("expected " + count + " descriptors, received " + out.size());
            }
            return out;
        } catch (IOException | RuntimeException e) {
            out.forEach(Fd::closeQuietly);
            throw e;
        }
    }

    private void writeAll(MemorySegment buf, long len) throws IOException {
        long off = 0;
        while (off < len) {
            long w = Io.write(socket.fd(), buf.address() + off, len - off);
            if (w < 0) {
                throw new NativeException("write(hand-over connection)", (int) -w);
            }
            off += w;
        }
    }

    private void readAll(MemorySegment buf, long len, long deadline) throws IOException {
        long off = 0;
        while (off < len) {
            await(deadline);
            long r = Io.read(socket.fd(), buf.address() + off, len - off);
            if (r == -Errno.EAGAIN) {
                continue;
            }
            if (r < 0) {
                throw new NativeException("read(hand-over connection)", (int) -r);
            }
            if (r == 0) {
                throw new IOException("the other process closed the hand-over connection");
            }
            off += r;
        }
    }

    /** Waits until the socket is readable or the deadline ({@link System#nanoTime}) passes. */
    void await(long deadline) throws IOException {
        try (Fd ep = Epoll.create(); Arena a = Arena.ofConfined()) {
            MemorySegment ev = Epoll.allocateEvents(a, 1);
            int r = Epoll.ctl(ep.fd(), Epoll.EPOLL_CTL_ADD, socket.fd(), Epoll.EPOLLIN | Epoll.EPOLLRDHUP, 0);
            if (r < 0) {
                throw new NativeException("epoll_ctl(hand-over connection)", -r);
            }
            while (true) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new java.io.InterruptedIOException("the other process did not answer in time");
                }
                int n = Epoll.poll(ep.fd(), ev, 1, (int) Math.max(1, Math.min(left / 1_000_000, Integer.MAX_VALUE)));
                if (n > 0) {
                    return;
                }
                if (n < 0 && n != -Errno.EINTR) {
                    throw new NativeException("epoll_wait(hand-over connection)", -n);
                }
            }
        }
    }

    @Override
    public void close() {
        socket.closeQuietly();
        arena.close();
    }
}
