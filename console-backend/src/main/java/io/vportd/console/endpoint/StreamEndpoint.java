package io.vportd.console.endpoint;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.Epoll;
import io.vportd.sys.Io;
import io.vportd.sys.Sockets;
import io.vportd.telemetry.LogLimiter;
import java.lang.System.Logger.Level;

/**
 * What the socket endpoints share: at most one connected host peer on a stream socket, watched
 * edge-triggered for both directions, closed cleanly when it goes away. Subclasses decide where
 * peers come from (a listener, or connecting out).
 */
abstract class StreamEndpoint implements Endpoint {

    static final System.Logger LOG = System.getLogger("vportd.endpoint");
    /** Lines a host peer can cause by connecting, being refused or leaving: one limiter per endpoint. */
    final LogLimiter peerLog = new LogLimiter(LOG);

    private static final int PEER_EVENTS = Epoll.EPOLLIN | Epoll.EPOLLOUT | Epoll.EPOLLRDHUP | Epoll.EPOLLET;

    /** A listener out of descriptors (EMFILE/ENFILE) rests this long at first, doubling up to the max. */
    static final long ACCEPT_PAUSE_MIN_MS = 100;
    static final long ACCEPT_PAUSE_MAX_MS = 5000;

    final String label;
    EndpointHost host;
    int port;
    private Fd peer;
    /** A listener taken out of the readiness set while the process is out of descriptors, or null. */
    private Fd pausedListener;
    private String pausedWho;
    private long resumeAt;
    private long pauseMs = ACCEPT_PAUSE_MIN_MS;
    private final io.vportd.telemetry.MetricSet metrics = new io.vportd.telemetry.MetricSet();
    private final io.vportd.telemetry.Counter acceptFailures = metrics.counter("vportd_port_accept_failures_total",
            "Failed accepts on a port's listener (out of descriptors: the listener rests, then comes back).");
    private final io.vportd.telemetry.Counter clientsRefused = metrics.counter("vportd_port_clients_refused_total",
            "Host clients closed at once because another one was connected.");

    StreamEndpoint(String label) {
        this.label = label;
    }

    /** A connected host client handed over by the previous process, adopted in {@link #attach}. */
    Fd handedPeer;
    /**
     * Rebuilt from a live hand-over: its start is not news (the hand-over logs one line for all
     * ports), so it logs at DEBUG, which also keeps the guest's pause short.
     */
    boolean handedOver;

    /** INFO for a fresh endpoint, DEBUG for one rebuilt from a hand-over. */
    final Level startLevel() {
        return handedOver ? Level.DEBUG : Level.INFO;
    }

    /**
     * Remembers the data plane and the port id; call first in {@link #start}. A host client
     * handed over by the previous process becomes the peer here, without a new connection.
     */
    final void attach(EndpointHost host, int port) {
        this.host = host;
        this.port = port;
        if (handedPeer != null) {
            Fd c = handedPeer;
            handedPeer = null;
            adopt(c, "host client (handed over)");
        }
        handedOver = false; // from here on, events are news again
    }

    /** The connected peer for a live hand-over (role {@code peer}), if any. */
    final Handed handedPeer(Handed h) {
        return h.fd("peer", peer == null ? -1 : peer.fd());
    }

    /**
     * Makes {@code c} the host peer and tells the data plane; when its readiness cannot be watched
     * the descriptor is closed and false returned.
     */
    final boolean adopt(Fd c, String who) {
        try {
            host.watch(c.fd(), PEER_EVENTS, port, EndpointHost.ROLE_CONNECTION);
        } catch (NativeException e) {
            LOG.log(Level.WARNING, "{0}: cannot watch {1}: {2}", label, who, e.getMessage());
            c.closeQuietly();
            return false;
        }
        peer = c;
        if (handedOver) {
            LOG.log(Level.DEBUG, "{0}: {1} connected", label, who);
        } else {
            peerLog.log(Level.INFO, "{0}: {1} connected", label, who);
        }
        host.hostConnected(port);
        return true;
    }

    /**
     * Accepts every pending connection on {@code listener}: the first becomes the peer; while one
     * is connected, others are closed at once (they see end of file, not a hang) with a log line.
     */
    final void acceptAll(Fd listener, String who) {
        while (true) {
            int fd = acceptOne(listener.fd());
            if (fd < 0) {
                if (fd != -Errno.EAGAIN) {
                    acceptFailed(listener, who, -fd);
                }
                return;
            }
            pauseMs = ACCEPT_PAUSE_MIN_MS;
            if (peer != null) {
                clientsRefused.increment();
                peerLog.log(Level.WARNING, "{0}: a {1} is already connected; refusing another", label, who);
                Io.close(fd);
                continue;
            }
            accepted(fd);
            adopt(Fd.adopt(fd), who);
        }
    }

    /** accept4 on the listener; a seam so tests can make it fail the way a full process does. */
    int acceptOne(int listenFd) {
        return Sockets.accept(listenFd, true);
    }

    /**
     * A failed accept. Out of descriptors the pending connection stays queued and the listener
     * stays readable, so watching it would wake the data plane in a loop: it leaves the
     * readiness set and comes back after a back-off ({@link #tick}). One log line per pause.
     */
    private void acceptFailed(Fd listener, String who, int errno) {
        long failures = acceptFailures.increment();
        if (errno != Errno.EMFILE && errno != Errno.ENFILE && errno != Errno.ENOBUFS && errno != Errno.ENOMEM) {
            peerLog.log(Level.WARNING, "{0}: accept failed: {1}", label, Errno.describe(errno));
            return;
        }
        host.unwatch(listener.fd());
        pausedListener = listener;
        pausedWho = who;
        resumeAt = System.nanoTime() + pauseMs * 1_000_000L;
        LOG.log(Level.WARNING, "{0}: cannot accept a {1}: {2}; not listening for {3} ms ({4} failed accepts so far)",
                label, who, Errno.describe(errno), Long.toString(pauseMs), Long.toString(failures));
        pauseMs = Math.min(ACCEPT_PAUSE_MAX_MS, pauseMs * 2);
    }

    /** Accepts that failed so far (each also logged or paused the listener). */
    final long acceptFailures() {
        return acceptFailures.get();
    }

    /** Accept failures and refused second clients, exported per port. */
    @Override
    public io.vportd.telemetry.MetricSet metrics() {
        return metrics;
    }

    /** True while the listener rests after running out of descriptors. */
    final boolean listenerPaused() {
        return pausedListener != null;
    }

    @Override
    public boolean wantsTicks() {
        return pausedListener != null;
    }

    @Override
    public void tick(long nanoTime) {
        if (pausedListener == null || nanoTime - resumeAt < 0) {
            return;
        }
        Fd listener = pausedListener;
        pausedListener = null;
        try {
            host.watch(listener.fd(), Epoll.EPOLLIN, port, EndpointHost.ROLE_LISTEN);
        } catch (NativeException e) {
            LOG.log(Level.WARNING, "{0}: cannot watch the listener again: {1}", label, e.getMessage());
            pausedListener = listener;
            resumeAt = nanoTime + pauseMs * 1_000_000L;
            return;
        }
        acceptAll(listener, pausedWho); // connections that waited meanwhile
    }

    /** Forgets a paused listener the subclass is about to close (it is not in the readiness set). */
    final void forgetPausedListener() {
        pausedListener = null;
    }

    /** A hook for socket options on a newly accepted peer. */
    void accepted(int fd) {
    }

    /** Closes the peer, if any; true when there was one. */
    final boolean closeConnection() {
        if (peer == null) {
            return false;
        }
        host.unwatch(peer.fd());
        peer.closeQuietly();
        peer = null;
        return true;
    }

    @Override
    public final boolean connected() {
        return peer != null;
    }

    @Override
    public final int outputFd() {
        return peer == null ? -1 : peer.fd();
    }

    @Override
    public final int inputFd() {
        return outputFd();
    }
}
