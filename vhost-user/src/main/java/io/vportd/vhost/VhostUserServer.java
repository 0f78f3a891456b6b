package io.vportd.vhost;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.Epoll;
import io.vportd.sys.Sockets;
import io.vportd.sys.UnixSockets;


import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import io.vportd.telemetry.LogLimiter;
import io.vportd.telemetry.SharedCounter;
import java.time.Duration;
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
 *
 * <p>A frontend must send its first message within {@link Options#handshakeTimeout()}; one that
 * connects and stays silent is dropped with a log line (counted in
 * {@link VhostStats#idleHandshakes()}) so that the next frontend gets in.
 */
public final class VhostUserServer implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(VhostUserServer.class.getName());
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;
    /** Default time a new frontend has to send its first message. */
    public static final Duration DEFAULT_HANDSHAKE_TIMEOUT = Duration.ofSeconds(10);
    /** Connections that may wait in the kernel while one frontend is served. */
    private static final int BACKLOG = 4;

    /**
     * How the server treats frontends.
     *
     * @param allowUnsealedMemory accept guest memory files not sealed against shrinking
     *                            (hugetlbfs files cannot be sealed); see {@link Session}
     * @param handshakeTimeout    how long a new connection may stay silent before it is dropped
     */
    public record Options(boolean allowUnsealedMemory, Duration handshakeTimeout) {
        public Options {
            Objects.requireNonNull(handshakeTimeout, "handshakeTimeout");
            if (handshakeTimeout.isNegative() || handshakeTimeout.isZero()) {
                throw new IllegalArgumentException("handshake timeout must be positive: " + handshakeTimeout);
            }
        }

        public static Options defaults() {
            return new Options(false, DEFAULT_HANDSHAKE_TIMEOUT);
        }
    }

    private final Path socketPath;
    private final VhostUserBackend backend;
    private final Fd listener;
    private final Thread thread;
    private volatile boolean closing;
    private final Object connectionLock = new Object();
    private int connection = -1; // guarded by connectionLock
    private final VhostStats stats = new VhostStats();
    private final Options options;
    private String endRequested; // guarded by connectionLock: why the device asked to end the session
    private final SharedCounter sessionsStarted = stats.sessionsStarted;
    private final SharedCounter sessionsEnded = stats.sessionsEnded;
    private final SharedCounter sessionsFailed = stats.sessionsFailed;
    private final AtomicReference<String> lastError = new AtomicReference<>();
    /** Lines any client of the socket can cause by connecting, failing or leaving. */
    private final LogLimiter connectionLog = new LogLimiter(LOG);

    public VhostUserServer(Path socketPath, VhostUserBackend backend) throws IOException {
        this(socketPath, backend, Options.defaults());
    }

    public VhostUserServer(Path socketPath, VhostUserBackend backend, Options options) throws IOException {
        this.socketPath = Objects.requireNonNull(socketPath, "socketPath");
        this.backend = Objects.requireNonNull(backend, "backend");
        this.options = Objects.requireNonNull(options, "options");
        removeStaleSocket(socketPath);
        this.listener = UnixSockets.listen(socketPath, BACKLOG);
        backend.bind(this::endSession);
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

    /**
     * Ends the current session on the device's request: shuts the connection down so the
     * server thread sees the end of the stream and cleans up as for a refused message.
     */
    private void endSession(String reason) {
        synchronized (connectionLock) {
            if (connection < 0 || endRequested != null) {
                return;
            }
            endRequested = reason;
            stats.sessionsEndedByDevice.incrementAndGet();
            Sockets.shutdown(connection, Sockets.SHUT_RDWR);
        }
    }

    /** Waits until the new connection has something to read (or hung up); false on timeout. */
    private boolean firstMessageArrives(int fd) throws IOException {
        try (Fd ep = Epoll.create(); Arena arena = Arena.ofConfined()) {
            MemorySegment ev = Epoll.allocateEvents(arena, 1);
            int r = Epoll.ctl(ep.fd(), Epoll.EPOLL_CTL_ADD, fd, Epoll.EPOLLIN | Epoll.EPOLLRDHUP, 0);
            if (r < 0) {
                throw new NativeException("epoll_ctl(vhost-user connection)", -r);
            }
            long deadline = System.nanoTime() + options.handshakeTimeout().toNanos();
            while (true) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                int n = Epoll.poll(ep.fd(), ev, 1, (int) Math.max(1, Math.min(left / 1_000_000, Integer.MAX_VALUE)));
                if (n > 0) {
                    return true;
                }
                if (n < 0 && n != -Errno.EINTR) {
                    throw new NativeException("epoll_wait(vhost-user connection)", -n);
                }
            }
        }
    }

    private void serve(Fd conn) {
        sessionsStarted.incrementAndGet();
        connectionLog.log(System.Logger.Level.INFO, "vhost-user: frontend connected on {0}", socketPath);
        synchronized (connectionLock) {
            connection = conn.fd();
            endRequested = null;
            if (closing) {
                Sockets.shutdown(conn.fd(), Sockets.SHUT_RDWR);
            }
        }
        boolean failed = false;
        try (Wire wire = new Wire(conn.fd(), stats)) {
            Session session = new Session(backend, wire::send, stats, options.allowUnsealedMemory());
            try {
                if (!firstMessageArrives(conn.fd())) {
                    failed = true;
                    stats.idleHandshakes.incrementAndGet();
                    String why = "frontend sent nothing within " + options.handshakeTimeout().toMillis() + " ms; dropping it";
                    lastError.set(why);
                    connectionLog.log(System.Logger.Level.WARNING, "vhost-user {0}: {1} so that the next frontend can connect",
                            socketPath, why);
                    return;
                }
                Session.Message m;
                while ((m = wire.receive()) != null) {
                    session.handle(m);
                }
                String requested = requestedEnd();
                if (requested != null) {
                    failed = true;
                    lastError.set(requested);
                    connectionLog.log(System.Logger.Level.ERROR, "vhost-user {0}: ending session: {1}", socketPath, requested);
                } else {
                    connectionLog.log(System.Logger.Level.INFO, "vhost-user: frontend disconnected from {0}", socketPath);
                }
            } catch (VhostProtocolException e) {
                failed = true;
                lastError.set(e.getMessage());
                connectionLog.log(System.Logger.Level.ERROR, "vhost-user {0}: ending session: {1}", socketPath, e.getMessage());
            } catch (IOException | RuntimeException e) {
                failed = true;
                String requested = requestedEnd();
                lastError.set(requested != null ? requested : String.valueOf(e.getMessage()));
                if (requested != null) {
                    connectionLog.log(System.Logger.Level.ERROR, "vhost-user {0}: ending session: {1}", socketPath, requested);
                } else if (!closing) {
                    LOG.log(System.Logger.Level.ERROR, "vhost-user: ending session on " + socketPath + " after failure", e);
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
                endRequested = null;
                conn.closeQuietly();
            }
            if (failed) {
                sessionsFailed.incrementAndGet();
            }
            sessionsEnded.incrementAndGet();
        }
    }

    private String requestedEnd() {
        synchronized (connectionLock) {
            return endRequested;
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
