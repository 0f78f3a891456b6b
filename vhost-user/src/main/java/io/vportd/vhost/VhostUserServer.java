package io.vportd.vhost;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.Sockets;
import io.vportd.sys.UnixSockets;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import io.vportd.telemetry.LogLimiter;
import io.vportd.telemetry.SharedCounter;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * Listens on a Unix socket for a vhost-user frontend (QEMU connects as the client) and serves
 * one frontend at a time on its own thread; after a disconnect, or a session that ended on a
 * malformed message, it resets the backend and accepts the next frontend.
 *
 * <p>Construction binds the socket (mode 0600). A stale socket file (nobody accepts on it) is
 * removed with a log line; a live one or a file that is not a socket is an error. {@link #close()}
 * stops the thread, ends the session and removes the socket file.
 */
public final class VhostUserServer implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(VhostUserServer.class.getName());
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;

    private final Path socketPath;
    private final VhostUserBackend backend;
    private final Fd listener;
    private final Thread thread;
    private volatile boolean closing;
    private final Object connectionLock = new Object();
    private int connection = -1; // guarded by connectionLock
    private final VhostStats stats = new VhostStats();
    private final SharedCounter sessionsStarted = stats.sessionsStarted;
    private final SharedCounter sessionsEnded = stats.sessionsEnded;
    private final SharedCounter sessionsFailed = stats.sessionsFailed;
    private final AtomicReference<String> lastError = new AtomicReference<>();
    /** Lines any client of the socket can cause by connecting, failing or leaving. */
    private final LogLimiter connectionLog = new LogLimiter(LOG);

    public VhostUserServer(Path socketPath, VhostUserBackend backend) throws IOException {
        this.socketPath = Objects.requireNonNull(socketPath, "socketPath");
        this.backend = Objects.requireNonNull(backend, "backend");
        removeStaleSocket(socketPath);
        this.listener = UnixSockets.listen(socketPath, 1);
        this.thread = Thread.ofPlatform().name("vhost-user " + socketPath.getFileName()).daemon(true)
                .unstarted(this::run);
    }

    /** Starts serving; returns this. */
    public VhostUserServer start() {
        thread.start();
        return this;
    }

    public Path socketPath() {
        return socketPath;
    }

    /** Frontends accepted so far. */
    public long sessionsStarted() {
        return sessionsStarted.get();
    }

    /** Sessions that have ended (cleanly or not) and been cleaned up. */
    public long sessionsEnded() {
        return sessionsEnded.get();
    }

    /** Sessions that ended on a protocol, backend or socket error. */
    public long sessionsFailed() {
        return sessionsFailed.get();
    }

    /** Counters of frontend misbehaviour over all sessions. */
    public VhostStats stats() {
        return stats;
    }

    /** The message of the last session error, or null. */
    public String lastError() {
        return lastError.get();
    }

    private static void removeStaleSocket(Path path) throws IOException {
        int mode;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        } catch (java.nio.file.NoSuchFileException e) {
            return;
        }
        if ((mode & S_IFMT) != S_IFSOCK) {
            throw new IOException(path + " exists and is not a socket; refusing to replace it");
        }
        try {
            UnixSockets.connect(path).close();
        } catch (NativeException e) {
            if (e.errno() == Errno.ECONNREFUSED) {
                LOG.log(System.Logger.Level.INFO, "vhost-user: removing stale socket {0} (nobody listening)", path);
                Files.deleteIfExists(path);
                return;
            }
            if (e.errno() == Errno.ENOENT) {
                return;
            }
            throw e;
        }
        throw new IOException(path + " is in use: another server is accepting connections on it");
    }

    private void run() {
        while (!closing) {
            int c = Sockets.accept(listener.fd(), false);
            if (c < 0) {
                if (closing) {
                    break;
                }
                connectionLog.log(System.Logger.Level.WARNING, "vhost-user: accept on {0}: {1}", socketPath, Errno.describe(c));
                if (c == -Errno.EMFILE || c == -Errno.ENFILE || c == -Errno.ENOBUFS || c == -Errno.ENOMEM) {
                    LockSupport.parkNanos(100_000_000L); // resource exhaustion: back off, do not spin
                }
                if (c == -Errno.EINVAL || c == -Errno.EBADF) {
                    break; // listener shut down
                }
                continue;
            }
            serve(Fd.adopt(c));
        }
    }

    private void serve(Fd conn) {
        sessionsStarted.incrementAndGet();
        connectionLog.log(System.Logger.Level.INFO, "vhost-user: frontend connected on {0}", socketPath);
        synchronized (connectionLock) {
            connection = conn.fd();
            if (closing) {
                Sockets.shutdown(conn.fd(), Sockets.SHUT_RDWR);
            }
        }
        boolean failed = false;
        try (Wire wire = new Wire(conn.fd(), stats)) {
            Session session = new Session(backend, wire::send, stats);
            try {
                Session.Message m;
                while ((m = wire.receive()) != null) {
                    session.handle(m);
                }
                connectionLog.log(System.Logger.Level.INFO, "vhost-user: frontend disconnected from {0}", socketPath);
            } catch (VhostProtocolException e) {
                failed = true;
                lastError.set(e.getMessage());
                connectionLog.log(System.Logger.Level.ERROR, "vhost-user: ending session: {0}", e.getMessage());
            } catch (IOException | RuntimeException e) {
                failed = true;
                lastError.set(String.valueOf(e.getMessage()));
                if (!closing) {
                    LOG.log(System.Logger.Level.ERROR, "vhost-user: ending session after failure", e);
                }
            } finally {
                try {
                    session.close();
                } catch (IOException | RuntimeException e) {
                    LOG.log(System.Logger.Level.ERROR, "vhost-user: errors while closing the session", e);
                }
            }
        } catch (RuntimeException e) {
            failed = true;
            lastError.set(String.valueOf(e.getMessage()));
            LOG.log(System.Logger.Level.ERROR, "vhost-user: session could not start", e);
        } finally {
            synchronized (connectionLock) {
                connection = -1;
                conn.closeQuietly();
            }
            if (failed) {
                sessionsFailed.incrementAndGet();
            }
            sessionsEnded.incrementAndGet();
        }
    }

    /** Stops serving: ends the current session (backend reset), closes the socket, removes its file. */
    @Override
    public void close() throws IOException {
        if (closing) {
            return;
        }
        closing = true;
        Sockets.shutdown(listener.fd(), Sockets.SHUT_RDWR); // wakes a blocked accept
        synchronized (connectionLock) {
            if (connection >= 0) {
                Sockets.shutdown(connection, Sockets.SHUT_RDWR); // wakes a blocked receive
            }
        }
        if (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while stopping the vhost-user server", e);
            }
        }
        IOException errors = null;
        try {
            listener.close();
        } catch (IOException e) {
            errors = e;
        }
        try {
            Files.deleteIfExists(socketPath);
        } catch (IOException e) {
            if (errors == null) {
                errors = e;
            } else {
                errors.addSuppressed(e);
            }
        }
        if (errors != null) {
            throw errors;
        }
    }
}
