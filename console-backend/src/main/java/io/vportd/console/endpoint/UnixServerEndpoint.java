package io.vportd.console.endpoint;

import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.Posix;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A Unix stream socket that one host client at a time connects to. A second client is accepted
 * and closed at once, with a log line, so it sees an immediate end of file rather than a hang.
 */
public final class UnixServerEndpoint implements Endpoint {

    private static final System.Logger LOG = System.getLogger("vportd.endpoint");

    private final Path path;
    private final String label;
    private EndpointHost host;
    private int port;
    private Fd listener;
    private Fd client;

    public UnixServerEndpoint(Path path, String portLabel) {
        this.path = path;
        this.label = portLabel;
    }

    @Override
    public void start(EndpointHost host, int port) throws IOException {
        this.host = host;
        this.port = port;
        Path dir = path.toAbsolutePath().getParent();
        if (dir != null && !Files.isDirectory(dir)) {
            throw new IOException(label + ": socket folder " + dir + " does not exist");
        }
        if (Files.exists(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            // A leftover from an earlier run: replace it only when it is a socket nobody serves.
            SocketFiles.removeStale(path, label);
        }
        listener = Posix.unixListen(path, 4);
        Posix.setNonBlocking(listener.fd(), true);
        host.watch(listener.fd(), Posix.EPOLLIN, port, EndpointHost.ROLE_LISTEN);
        LOG.log(Level.INFO, "{0}: listening on {1}", label, path);
    }

    @Override
    public void onListenReady(int events) {
        while (true) {
            int fd = Posix.accept(listener.fd(), true);
            if (fd < 0) {
                if (fd != -io.vportd.sys.Errno.EAGAIN) {
                    LOG.log(Level.WARNING, "{0}: accept on {1} failed: {2}", label, path, io.vportd.sys.Errno.describe(-fd));
                }
                return;
            }
            if (client != null) {
                LOG.log(Level.WARNING, "{0}: a host client is already connected to {1}; refusing another", label, path);
                Posix.close(fd);
                continue;
            }
            Fd c = Fd.adopt(fd);
            try {
                host.watch(fd, Posix.EPOLLIN | Posix.EPOLLOUT | Posix.EPOLLRDHUP | Posix.EPOLLET, port,
                        EndpointHost.ROLE_CONNECTION);
            } catch (NativeException e) {
                LOG.log(Level.WARNING, "{0}: cannot watch new client: {1}", label, e.getMessage());
                c.closeQuietly();
                continue;
            }
            client = c;
            LOG.log(Level.INFO, "{0}: host client connected on {1}", label, path);
            host.hostConnected(port);
        }
    }

    @Override
    public boolean connected() {
        return client != null;
    }

    @Override
    public int outputFd() {
        return client == null ? -1 : client.fd();
    }

    @Override
    public int inputFd() {
        return outputFd();
    }

    @Override
    public void hostGone() {
        if (client != null) {
            host.unwatch(client.fd());
            client.closeQuietly();
            client = null;
            LOG.log(Level.INFO, "{0}: host client disconnected from {1}", label, path);
        }
    }

    @Override
    public String describe() {
        return "socket " + path;
    }

    @Override
    public void close() {
        if (client != null) {
            host.unwatch(client.fd());
            client.closeQuietly();
            client = null;
        }
        if (listener != null) {
            host.unwatch(listener.fd());
            listener.closeQuietly();
            listener = null;
            try {
                Files.deleteIfExists(path);
            } catch (IOException e) {
                LOG.log(Level.WARNING, "{0}: cannot remove {1}: {2}", label, path, e.getMessage());
            }
        }
    }
}
