package io.vportd.console.endpoint;

import io.vportd.sys.Fd;
import io.vportd.sys.Epoll;
import io.vportd.sys.UnixSockets;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A Unix stream socket that one host client at a time connects to. A second client is accepted
 * and closed at once, with a log line, so it sees an immediate end of file rather than a hang.
 */
public final class UnixServerEndpoint extends StreamEndpoint {

    private final Path path;
    private Fd listener;

    public UnixServerEndpoint(Path path, String portLabel) {
        super(portLabel);
        this.path = path;
    }

    @Override
    public void open() throws IOException {
        Path dir = path.toAbsolutePath().getParent();
        if (dir != null && !Files.isDirectory(dir)) {
            throw new IOException(label + ": socket folder " + dir + " does not exist");
        }
        if (Files.exists(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            // A leftover from an earlier run: replace it only when it is a socket nobody serves.
            SocketFiles.removeStale(path, label);
        }
        listener = UnixSockets.listenNonBlocking(path, 4);
    }

    /** Rebuilt around a listener (and maybe a client) handed over by the previous process. */
    static UnixServerEndpoint adopted(Path path, String label, Handed handed) throws IOException {
        UnixServerEndpoint e = new UnixServerEndpoint(path, label);
        e.listener = Endpoints.required(handed, "listener", label);
        e.handedPeer = handed.take("peer");
        e.handedOver = true;
        return e;
    }

    private boolean filesDetached;

    @Override
    public java.util.List<Path> detachFiles() {
        filesDetached = true;
        return listener == null ? java.util.List.of() : java.util.List.of(path);
    }

    @Override
    public Handed handover() {
        return handedPeer(new Handed().fd("listener", listener.fd()));
    }

    @Override
    public void start(EndpointHost host, int port) throws IOException {
        Level level = startLevel();
        attach(host, port);
        host.watch(listener.fd(), Epoll.EPOLLIN, port, EndpointHost.ROLE_LISTEN);
        LOG.log(level, "{0}: listening on {1}", label, path);
    }

    @Override
    public void onListenReady(int events) {
        acceptAll(listener, "host client on " + path);
    }

    @Override
    public void hostDisconnected() {
        if (closeConnection()) {
            peerLog.log(Level.INFO, "{0}: host client disconnected from {1}", label, path);
        }
    }

    @Override
    public String describe() {
        return "socket " + path;
    }

    @Override
    public void close() {
        closeConnection();
        forgetPausedListener();
        if (listener != null) {
            if (host != null) {
                host.unwatch(listener.fd());
            }
            listener.closeQuietly();
            listener = null;
            if (!filesDetached) {
                try {
                    Files.deleteIfExists(path);
                } catch (IOException e) {
                    LOG.log(Level.WARNING, "{0}: cannot remove {1}: {2}", label, path, e.getMessage());
                }
            }
        }
    }
}
