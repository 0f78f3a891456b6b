package io.vportd.console.handover;

import io.vportd.console.endpoint.SocketFiles;
import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.Sockets;
import io.vportd.sys.UnixSockets;
import io.vportd.telemetry.LogLimiter;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.function.Consumer;
import java.util.concurrent.locks.LockSupport;

/**
 * A running daemon's hand-over socket, the same for a daemon of one device ({@link HandoverServer})
 * and of several ({@link DevicesHandover}): the listening descriptor (it goes to the next process
 * with the state), the thread that accepts new processes one at a time and gives each connection
 * to the server, and the socket file removed on an orderly close.
 */
final class HandoverSocket implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("vportd.handover");

    private final Path path;
    private final Fd listener;
    private final LogLimiter clientLog = new LogLimiter(LOG);
    private Thread thread;
    private volatile boolean closed;

    private HandoverSocket(Path path, Fd listener) {
        this.path = path;
        this.listener = listener;
    }

    /** Binds {@code path} (0600; replacing a stale socket file only); accepts nothing until {@link #start}. */
    static HandoverSocket listen(Path path) throws IOException {
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            SocketFiles.removeStale(path, "the hand-over socket");
        }
        return new HandoverSocket(path, UnixSockets.listen(path, 1));
    }

    /** The hand-over socket a previous process handed over; accepts nothing until {@link #start}. */
    static HandoverSocket adopt(Path path, Fd listener) {
        return new HandoverSocket(path, listener);
    }

    /** Starts accepting: each connection, one at a time, goes to {@code serve}. Called once. */
    void start(Consumer<HandoverLink> serve) {
        thread = Thread.ofPlatform().daemon().name("vportd-handover").start(() -> acceptLoop(serve));
    }

    Path path() {
        return path;
    }

    /** The listening descriptor, for the state record. */
    int fd() {
        return listener.fd();
    }

    /** For bad requests: logged at a limited rate. */
    LogLimiter clientLog() {
        return clientLog;
    }

    /** The hand-over happened: the listener is the new process's now, so nothing more is accepted here. */
    void handedOver() {
        closed = true;
    }

    private void acceptLoop(Consumer<HandoverLink> serve) {
        while (!closed) {
            int c = Sockets.accept(listener.fd(), false);
            if (c < 0) {
                if (closed || c == -Errno.EINVAL || c == -Errno.EBADF) {
                    return;
                }
                clientLog.log(Level.WARNING, "hand-over socket {0}: accept failed: {1}", path, Errno.describe(-c));
                LockSupport.parkNanos(100_000_000L);
                continue;
            }
            try (HandoverLink link = new HandoverLink(Fd.adopt(c))) {
                serve.accept(link);
            } catch (RuntimeException e) {
                LOG.log(Level.ERROR, "hand-over failed unexpectedly; serving on", e);
            }
        }
    }

    /** Stops listening and removes the socket file (an orderly shutdown, not a hand-over). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        Sockets.shutdown(listener.fd(), Sockets.SHUT_RDWR);
        try {
            if (thread != null) {
                thread.join(2000);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        listener.closeQuietly();
        try {
            Files.deleteIfExists(path);
        } catch (IOException e) {
            LOG.log(Level.WARNING, "cannot remove {0}: {1}", path, e.getMessage());
        }
    }
}
