package io.vportd.console.endpoint;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.Posix;
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

    private static final int PEER_EVENTS = Posix.EPOLLIN | Posix.EPOLLOUT | Posix.EPOLLRDHUP | Posix.EPOLLET;

    final String label;
    EndpointHost host;
    int port;
    private Fd peer;

    StreamEndpoint(String label) {
        this.label = label;
    }

    /** Remembers the data plane and the port id; call first in {@link #start}. */
    final void attach(EndpointHost host, int port) {
        this.host = host;
        this.port = port;
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
        peerLog.log(Level.INFO, "{0}: {1} connected", label, who);
        host.hostConnected(port);
        return true;
    }

    /**
     * Accepts every pending connection on {@code listener}: the first becomes the peer; while one
     * is connected, others are closed at once (they see end of file, not a hang) with a log line.
     */
    final void acceptAll(Fd listener, String who) {
        while (true) {
            int fd = Posix.accept(listener.fd(), true);
            if (fd < 0) {
                if (fd != -Errno.EAGAIN) {
                    peerLog.log(Level.WARNING, "{0}: accept failed: {1}", label, Errno.describe(-fd));
                }
                return;
            }
            if (peer != null) {
                peerLog.log(Level.WARNING, "{0}: a {1} is already connected; refusing another", label, who);
                Posix.close(fd);
                continue;
            }
            accepted(fd);
            adopt(Fd.adopt(fd), who);
        }
    }

    /** A hook for socket options on a newly accepted peer. */
    void accepted(int fd) {
    }

    /** Closes the peer, if any; true when there was one. */
    final boolean dropPeer() {
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
