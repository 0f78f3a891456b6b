package io.vportd.console.endpoint;

import io.vportd.sys.Fd;
import io.vportd.sys.UnixSockets;
import io.vportd.sys.NativeException;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;

/**
 * Connects to a Unix stream socket some other program listens on, and connects again (with a
 * doubling back-off from {@link #MIN_BACKOFF_MS} to {@link #MAX_BACKOFF_MS}) whenever the
 * connection fails or ends. Connects are non-blocking; a Unix-socket connect never waits.
 */
public final class UnixClientEndpoint extends StreamEndpoint {

    static final long MIN_BACKOFF_MS = 100;
    static final long MAX_BACKOFF_MS = 5000;

    private final Path path;
    private boolean closed;
    private long backoffMs = MIN_BACKOFF_MS;
    private long nextAttempt;
    private long failures;

    public UnixClientEndpoint(Path path, String portLabel) {
        super(portLabel);
        this.path = path;
    }

    /** Rebuilt around the connection (if there was one) handed over by the previous process. */
    static UnixClientEndpoint adopted(Path path, String label, Handed handed) {
        UnixClientEndpoint e = new UnixClientEndpoint(path, label);
        e.handedPeer = handed.take("peer");
        e.handedOver = true;
        return e;
    }

    @Override
    public Handed handover() {
        return handedPeer(new Handed());
    }

    @Override
    public void start(EndpointHost host, int port) throws IOException {
        attach(host, port);
        if (!connected()) {
            attempt(System.nanoTime());
        }
    }

    private void attempt(long now) {
        Fd c;
        try {
            c = UnixSockets.connectNonBlocking(path);
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
        if (!adopt(c, "connection to " + path)) {
            nextAttempt = now + backoffMs * 1_000_000L;
            return;
        }
        failures = 0;
        backoffMs = MIN_BACKOFF_MS;
    }

    @Override
    public boolean wantsTicks() {
        return !connected() && !closed;
    }

    @Override
    public void tick(long nanoTime) {
        if (!connected() && !closed && nanoTime - nextAttempt >= 0) {
            attempt(nanoTime);
        }
    }

    @Override
    public void hostDisconnected() {
        if (closeConnection()) {
            backoffMs = MIN_BACKOFF_MS;
            nextAttempt = System.nanoTime() + MIN_BACKOFF_MS * 1_000_000L;
            peerLog.log(Level.INFO, "{0}: connection to {1} ended; reconnecting", label, path);
        }
    }

    @Override
    public String describe() {
        return "unix-client " + path;
    }

    @Override
    public void close() {
        closed = true;
        closeConnection();
    }
}
