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
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
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

    /** Wakes the server thread out of accept or receive waits: close, or a hand-over asking it to stop. */
    private final Fd wake;
    /** Set by {@link #suspend}; taken by the server thread at its next message boundary. */
    private final AtomicReference<CompletableFuture<Suspension>> suspendRequest = new AtomicReference<>();
    /** A session handed over by the previous process, served first (null otherwise). */
    private Fd adoptedConnection;
    private Wire adoptedWire;
    private Session adoptedSession;

    public VhostUserServer(Path socketPath, VhostUserBackend backend) throws IOException {
        this(socketPath, backend, Options.defaults());
    }

    public VhostUserServer(Path socketPath, VhostUserBackend backend, Options options) throws IOException {
        this.socketPath = Objects.requireNonNull(socketPath, "socketPath");
        this.backend = Objects.requireNonNull(backend, "backend");
        this.options = Objects.requireNonNull(options, "options");
        removeStaleSocket(socketPath);
        this.listener = UnixSockets.listen(socketPath, BACKLOG);
        this.wake = wakeFd(listener);
        backend.bind(this::endSession);
        this.thread = Thread.ofPlatform().name("vhost-user " + socketPath.getFileName()).daemon(true)
                .unstarted(this::run);
    }

    /**
     * Takes over a listener (and a frontend's connection, if one was being served) from the process
     * that served {@code socketPath} before: nothing is bound or removed. The previous session is
     * rebuilt from {@code replay} (the messages {@link Session#suspendForHandover} produced, with
     * their descriptors received into this process); its rings start on the backend at once.
     * Serving the connection begins with {@link #start()}.
     *
     * @throws VhostProtocolException a replayed message was refused (the listener, the connection and
     *                                every descriptor are closed; the caller's process must give up)
     */
    public static VhostUserServer adopt(Path socketPath, VhostUserBackend backend, Options options, Fd listener,
                                        Fd connection, List<Session.Message> replay) throws IOException {
        return adopt(socketPath, backend, options, listener, connection, replay, false);
    }

    /**
     * As {@link #adopt(Path, VhostUserBackend, Options, Fd, Fd, List)}; with {@code recovering} the
     * rings the replay starts take their positions from their used rings
     * ({@link Session#recoverRingBases}): the replay is a crash-recovery checkpoint, whose bases
     * are stale.
     */
    public static VhostUserServer adopt(Path socketPath, VhostUserBackend backend, Options options, Fd listener,
                                        Fd connection, List<Session.Message> replay, boolean recovering) throws IOException {
        VhostUserServer s = new VhostUserServer(socketPath, backend, options, listener);
        if (connection == null) {
            replay.forEach(m -> java.util.Arrays.stream(m.fds()).filter(Objects::nonNull).forEach(Fd::closeQuietly));
            return s;
        }
        Wire wire = new Wire(connection.fd(), s.stats);
        Session session = new Session(backend, wire::send, s.stats, options.allowUnsealedMemory());
        try {
            if (recovering) {
                session.recoverRingBases();
            }
            for (int i = 0; i < replay.size(); i++) {
                session.handle(replay.get(i));
            }
            session.endRingRecovery();
        } catch (IOException | RuntimeException e) {
            for (int i = 0; i < replay.size(); i++) {
                java.util.Arrays.stream(replay.get(i).fds()).filter(Objects::nonNull).forEach(Fd::closeQuietly);
            }
            try {
                session.close();
            } catch (IOException closing) {
                e.addSuppressed(closing);
            }
            wire.close();
            connection.closeQuietly();
            s.wake.closeQuietly();
            listener.closeQuietly();
            throw e;
        }
        s.adoptedConnection = connection;
        s.adoptedWire = wire;
        s.adoptedSession = session;
        return s;
    }

    private VhostUserServer(Path socketPath, VhostUserBackend backend, Options options, Fd listener) throws IOException {
        this.socketPath = Objects.requireNonNull(socketPath, "socketPath");
        this.backend = Objects.requireNonNull(backend, "backend");
        this.options = Objects.requireNonNull(options, "options");
        this.listener = listener;
        this.wake = wakeFd(listener);
        backend.bind(this::endSession);
        this.thread = Thread.ofPlatform().name("vhost-user " + socketPath.getFileName()).daemon(true)
                .unstarted(this::run);
    }

    private static Fd wakeFd(Fd listener) throws IOException {
        try {
            return io.vportd.sys.EventFd.create(0, io.vportd.sys.EventFd.EFD_NONBLOCK | io.vportd.sys.EventFd.EFD_CLOEXEC);
        } catch (IOException | RuntimeException e) {
            listener.closeQuietly();
            throw e;
        }
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
        if (adoptedConnection == null) {
            tellWatcher(-1, null);
        }
        if (adoptedConnection != null) {
            Fd conn = adoptedConnection;
            adoptedConnection = null;
            serve(conn, adoptedWire, adoptedSession);
        }
        while (!closing) {
            int ready = await(listener.fd(), Long.MAX_VALUE);
            if (ready == SUSPEND) {
                if (suspendHere(null, null)) {
                    return;
                }
                continue;
            }
            if (ready != READABLE) {
                continue;
            }
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

    private static final int TIMEOUT = 0;
    private static final int READABLE = 1;
    private static final int SUSPEND = 2;

    /**
     * Waits until {@code fd} is readable (or hung up), a suspension is asked for, or the deadline
     * ({@link System#nanoTime()}, {@code Long.MAX_VALUE} for none) passes.
     */
    private int await(int fd, long deadline) {
        try (Fd ep = Epoll.create(); Arena arena = Arena.ofConfined()) {
            MemorySegment ev = Epoll.allocateEvents(arena, 2);
            int r = Epoll.ctl(ep.fd(), Epoll.EPOLL_CTL_ADD, fd, Epoll.EPOLLIN | Epoll.EPOLLRDHUP, 1);
            if (r < 0) {
                throw new NativeException("epoll_ctl(vhost-user socket)", -r);
            }
            r = Epoll.ctl(ep.fd(), Epoll.EPOLL_CTL_ADD, wake.fd(), Epoll.EPOLLIN, 2);
            if (r < 0) {
                throw new NativeException("epoll_ctl(vhost-user wake eventfd)", -r);
            }
            while (true) {
                if (suspendRequest.get() != null) {
                    return SUSPEND;
                }
                if (closing) {
                    return READABLE; // the caller's next call fails on the shut-down socket
                }
                int timeout = -1;
                if (deadline != Long.MAX_VALUE) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        return TIMEOUT;
                    }
                    timeout = (int) Math.max(1, Math.min(left / 1_000_000, Integer.MAX_VALUE));
                }
                int n = Epoll.poll(ep.fd(), ev, 2, timeout);
                if (n < 0 && n != -Errno.EINTR) {
                    throw new NativeException("epoll_wait(vhost-user socket)", -n);
                }
                boolean readable = false;
                for (int i = 0; i < n; i++) {
                    if (Epoll.eventData(ev, i) == 2) {
                        io.vportd.sys.EventFd.drain(wake.fd());
                    } else {
                        readable = true;
                    }
                }
                if (readable && suspendRequest.get() == null) {
                    return READABLE;
                }
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    // ---- live hand-over ------------------------------------------------------------------

    /**
     * What a suspended server hands to a live hand-over: its descriptors (still its own) and the
     * session rebuilt as messages. Exactly one of {@link #resume} or {@link #handedOver} must follow.
     *
     * @param listenerFd   the listening socket
     * @param connectionFd the frontend's connection, or -1 when none is being served
     * @param replay       the session as messages (empty without a connection)
     */
    /**
     * Told, on the server thread, whenever what a restarted process would need to rebuild the
     * session changes: the listener alone, a frontend connecting, every message that may change
     * the session (not the pure queries), the session ending. The descriptors are the server's and
     * the session's, valid only during the call: a watcher that keeps them must duplicate them.
     */
    @FunctionalInterface
    public interface SessionWatcher {
        void changed(int listenerFd, int connectionFd, List<Session.Replay> replay);
    }

    private volatile SessionWatcher watcher;

    /** Sets the {@link SessionWatcher}; call before {@link #start}. */
    public VhostUserServer watchSessions(SessionWatcher w) {
        this.watcher = w;
        return this;
    }

    private void tellWatcher(int connectionFd, Session session) {
        SessionWatcher w = watcher;
        if (w == null) {
            return;
        }
        try {
            w.changed(listener.fd(), connectionFd, session == null ? List.of() : session.describe());
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "vhost-user: the session watcher failed", e);
        }
    }

    private static boolean changesSession(int code) {
        return code != Request.GET_FEATURES.code && code != Request.GET_PROTOCOL_FEATURES.code
                && code != Request.GET_QUEUE_NUM.code && code != Request.GET_CONFIG.code
                && code != Request.GET_MAX_MEM_SLOTS.code;
    }

    /**
     * A server stopped for a hand-over.
     *
     * @param stoppedAtNanos when its rings began to stop ({@link System#nanoTime}): the guest's
     *                       pause starts here
     */
    public record Suspension(int listenerFd, int connectionFd, List<Session.Replay> replay, long stoppedAtNanos,
                             CompletableFuture<Boolean> decision) {
        /** The hand-over failed: the server starts the rings again and goes on serving. */
        public void resume() {
            decision.complete(Boolean.TRUE);
        }

        /** The next process serves now: this server never touches the connection again. */
        public void handedOver() {
            decision.complete(Boolean.FALSE);
        }
    }

    /**
     * Stops the server at its next message boundary (never inside a message), stops every ring and
     * describes the session; the frontend's next messages wait in the socket for whoever serves
     * next. Blocks until the server thread has done so.
     *
     * @throws IOException the server did not stop within {@code timeout} (it then stops on its own
     *                     later and resumes at once), or it is closing
     */
    public Suspension suspend(Duration timeout) throws IOException {
        CompletableFuture<Suspension> request = new CompletableFuture<>();
        if (!suspendRequest.compareAndSet(null, request)) {
            throw new IOException("a hand-over is already in progress");
        }
        io.vportd.sys.EventFd.wake(wake.fd());
        try {
            return request.get(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            if (!request.cancel(false)) {
                Suspension late = request.join();
                late.resume();
            }
            throw new IOException("the vhost-user server did not reach a message boundary within " + timeout.toMillis() + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while suspending the vhost-user server", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IOException("suspending the vhost-user server failed: " + e.getCause().getMessage(), e.getCause());
        }
    }

    /**
     * On the server thread, at a message boundary: answers a suspension and waits for its outcome.
     * Returns true when the next process took over: the caller must stop serving at once.
     */
    private boolean suspendHere(Session session, Fd conn) {
        CompletableFuture<Suspension> request = suspendRequest.get();
        if (request == null) {
            return false;
        }
        CompletableFuture<Boolean> decision = new CompletableFuture<>();
        Suspension s;
        try {
            long stopping = System.nanoTime();
            s = new Suspension(listener.fd(), conn == null ? -1 : conn.fd(),
                    session == null ? List.of() : session.suspendForHandover(), stopping, decision);
        } catch (RuntimeException e) {
            suspendRequest.set(null);
            request.completeExceptionally(e);
            return false;
        }
        if (!request.complete(s)) { // the asker gave up meanwhile
            s.resume();
        }
        boolean resume = decision.join();
        if (!resume) {
            LOG.log(System.Logger.Level.INFO, "vhost-user {0}: handed over to the next process", socketPath);
            while (!closing) { // the process exits; this thread must not read the connection again
                LockSupport.park(this);
            }
            return true;
        }
        if (session != null) {
            try {
                session.resumeAfterHandover();
            } catch (VhostProtocolException e) {
                LOG.log(System.Logger.Level.ERROR, "vhost-user {0}: restarting rings after a failed hand-over: {1}",
                        socketPath, e.getMessage());
            }
        }
        suspendRequest.set(null);
        LOG.log(System.Logger.Level.INFO, "vhost-user {0}: hand-over did not happen; serving again", socketPath);
        return false;
    }

    private void serve(Fd conn) {
        Wire wire;
        try {
            wire = new Wire(conn.fd(), stats);
        } catch (RuntimeException e) {
            lastError.set(String.valueOf(e.getMessage()));
            LOG.log(System.Logger.Level.ERROR, "vhost-user: session could not start", e);
            conn.closeQuietly();
            sessionsFailed.incrementAndGet();
            return;
        }
        serve(conn, wire, null);
    }

    /** Serves one frontend; {@code restored} is a session handed over by the previous process, or null. */
    private void serve(Fd conn, Wire wire, Session restored) {
        sessionsStarted.incrementAndGet();
        connectionLog.log(System.Logger.Level.INFO, restored != null ? "vhost-user: serving the frontend handed over on {0}"
                : "vhost-user: frontend connected on {0}", socketPath);
        synchronized (connectionLock) {
            connection = conn.fd();
            endRequested = null;
            if (closing) {
                Sockets.shutdown(conn.fd(), Sockets.SHUT_RDWR);
            }
        }
        boolean failed = false;
        try (wire) {
            Session session = restored != null ? restored
                    : new Session(backend, wire::send, stats, options.allowUnsealedMemory());
            try {
                long deadline = System.nanoTime() + options.handshakeTimeout().toNanos();
                int first;
                while (restored == null && (first = await(conn.fd(), deadline)) != READABLE) {
                    if (first == SUSPEND) {
                        if (suspendHere(session, conn)) {
                            return;
                        }
                        continue;
                    }
                    failed = true;
                    stats.idleHandshakes.incrementAndGet();
                    String why = "frontend sent nothing within " + options.handshakeTimeout().toMillis() + " ms; dropping it";
                    lastError.set(why);
                    connectionLog.log(System.Logger.Level.WARNING, "vhost-user {0}: {1} so that the next frontend can connect",
                            socketPath, why);
                    return;
                }
                tellWatcher(conn.fd(), session);
                Session.Message m;
                while (true) {
                    if (await(conn.fd(), Long.MAX_VALUE) == SUSPEND) {
                        if (suspendHere(session, conn)) {
                            return;
                        }
                        continue;
                    }
                    if ((m = wire.receive()) == null) {
                        break;
                    }
                    session.handle(m);
                    if (changesSession(m.header().request())) {
                        tellWatcher(conn.fd(), session);
                    }
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
                tellWatcher(-1, null);
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
        io.vportd.sys.EventFd.wake(wake.fd());
        LockSupport.unpark(thread); // a server that handed over waits for this
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
        wake.closeQuietly();
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
