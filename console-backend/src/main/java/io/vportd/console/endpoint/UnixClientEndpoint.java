package io.vportd.console.endpoint;

import io.vportd.sys.Fd;
import io.vportd.sys.Inet;
import io.vportd.sys.NativeException;
import io.vportd.sys.Posix;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;

/**
 * Connects to a Unix stream socket some other program listens on, and connects again (with a
 * doubling back-off from {@link #MIN_BACKOFF_MS} to {@link #MAX_BACKOFF_MS}) whenever the
 * connection fails or ends. Connects are non-blocking; a Unix-socket connect never waits.
 */
public final class UnixClientEndpoint implements Endpoint {

    private static final System.Logger LOG = System.getLogger("vportd.endpoint");

    static final long MIN_BACKOFF_MS = 100;
    static final long MAX_BACKOFF_MS = 5000;

    private final Path path;
    private final String label;
    private EndpointHost host;
    private int port;
    private Fd client;
    private boolean closed;
    private long backoffMs = MIN_BACKOFF_MS;
    private long nextAttempt;
    private long failures;

    public UnixClientEndpoint(Path path, String portLabel) {
        this.path = path;
        this.label = portLabel;
    }

    @Override
    public void start(EndpointHost host, int port) throws IOException {
        this.host = host;
        this.port = port;
        attempt(System.nanoTime());
    }

    private void attempt(long now) {
        Fd c;
        try {
            c = Inet.unixConnectNonBlocking(path);
        } catch (NativeException e) {
            failures++;
            if (failures == 1) {
                LOG.log(Level.INFO, "{0}: cannot connect to {1} ({2}); retrying with back-off", label, path, e.getMessage());
            } else {
                LOG.log(Level.DEBUG, "{0}: connect to {1} failed again: {2}", label, path, e.getMessage());
            }
            nextAttempt = now + backoffMs * 1_000_000L;
            backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
            return;
        }
        try {
            host.watch(c.fd(), Posix.EPOLLIN | Posix.EPOLLOUT | Posix.EPOLLRDHUP | Posix.EPOLLET, port,
                    EndpointHost.ROLE_CONNECTION);
        } catch (NativeException e) {
            LOG.log(Level.WARNING, "{0}: cannot watch the connection to {1}: {2}", label, path, e.getMessage());
            c.closeQuietly();
            nextAttempt = now + backoffMs * 1_000_000L;
            return;
        }
        client = c;
        failures = 0;
        backoffMs = MIN_BACKOFF_MS;
        LOG.log(Level.INFO, "{0}: connected to {1}", label, path);
        host.hostConnected(port);
    }

    @Override
    public boolean wantsTicks() {
        return client == null && !closed;
    }

    @Override
    public void tick(long nanoTime) {
        if (client == null && !closed && nanoTime - nextAttempt >= 0) {
            attempt(nanoTime);
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
            backoffMs = MIN_BACKOFF_MS;
            nextAttempt = System.nanoTime() + MIN_BACKOFF_MS * 1_000_000L;
            LOG.log(Level.INFO, "{0}: connection to {1} ended; reconnecting", label, path);
        }
    }

    @Override
    public String describe() {
        return "unix-client " + path;
    }

    @Override
    public void close() {
        closed = true;
        if (client != null) {
            host.unwatch(client.fd());
            client.closeQuietly();
            client = null;
        }
    }
}
