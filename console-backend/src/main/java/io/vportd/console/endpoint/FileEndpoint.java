package io.vportd.console.endpoint;

import io.vportd.sys.Fd;
import io.vportd.sys.Epoll;
import io.vportd.sys.Io;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;

/**
 * Guest output appended to a file (created 0600). Output only; always "connected" once opened.
 * The data plane never writes the file itself: a {@link BlockingFdBridge} pump does, so a slow,
 * stalled or full disk holds guest buffers (a generic port's writer waits) instead of freezing
 * every port, and a failed write is retried until the disk has room again.
 */
public final class FileEndpoint implements Endpoint {

    private static final System.Logger LOG = System.getLogger("vportd.endpoint");
    /** Mode of a file the endpoint creates: only the daemon's user reads guest output. */
    static final int FILE_MODE = 0600;

    private final Path path;
    private final String label;
    private EndpointHost host;
    private BlockingFdBridge bridge;
    private final io.vportd.telemetry.MetricSet metrics = new io.vportd.telemetry.MetricSet();

    @Override
    public io.vportd.telemetry.MetricSet metrics() {
        return metrics;
    }

    public FileEndpoint(Path path, String portLabel) {
        this.path = path;
        this.label = portLabel;
    }

    @Override
    public void open() throws IOException {
        Fd file = Io.open(path, Io.O_WRONLY | Io.O_CREAT | Io.O_APPEND | Io.O_CLOEXEC, FILE_MODE);
        int fd = file.fd();
        fileFd = fd;
        try {
            bridge = BlockingFdBridge.toSink(file, (addr, len) -> Io.write(fd, addr, len), label, "file " + path, metrics);
        } catch (IOException | RuntimeException e) {
            file.closeQuietly();
            throw e;
        }
    }

    /** Rebuilt from a live hand-over: its start logs at DEBUG. */
    private boolean handedOver;
    /** The file descriptor, kept for a live hand-over (the pump owns and closes it). */
    private int fileFd = -1;

    /** Rebuilt around the file and the bridge (with whatever it still holds) handed over. */
    static FileEndpoint adopted(Path path, String label, Handed handed) throws IOException {
        FileEndpoint e = new FileEndpoint(path, label);
        Fd near = Endpoints.required(handed, "bridge", label);
        Fd far = handed.take("pump");
        Fd file = handed.take("file");
        if (far == null || file == null) {
            near.closeQuietly();
            if (far != null) {
                far.closeQuietly();
            }
            if (file != null) {
                file.closeQuietly();
            }
            throw new IOException(label + ": the hand-over lacks the file or its pump descriptor");
        }
        int fd = file.fd();
        e.fileFd = fd;
        e.handedOver = true;
        e.bridge = BlockingFdBridge.adoptSink(near, far, file, (addr, len) -> Io.write(fd, addr, len), label,
                "file " + path, e.metrics);
        return e;
    }

    @Override
    public void prepareHandover(long millis) throws IOException {
        try {
            if (!bridge.holdForHandover(millis)) {
                throw new IOException(label + ": writing to " + path + " has not finished within " + millis
                        + " ms (a stalled disk?); cannot hand over now");
            }
        } catch (InterruptedException x) {
            Thread.currentThread().interrupt();
            throw new IOException(label + ": interrupted while stopping the file pump", x);
        }
    }

    @Override
    public Handed handover() throws IOException {
        if (!bridge.heldForHandover()) {
            throw new IOException(label + ": the file pump was not stopped for the hand-over");
        }
        return new Handed().fd("bridge", bridge.fd()).fd("pump", bridge.farFd()).fd("file", fileFd);
    }

    @Override
    public void handoverAbandoned() {
        if (bridge != null) {
            bridge.releaseHandoverHold();
        }
    }

    @Override
    public void start(EndpointHost host, int port) throws IOException {
        this.host = host;
        try {
            host.watch(bridge.fd(), Epoll.EPOLLOUT | Epoll.EPOLLET, port, EndpointHost.ROLE_CONNECTION);
        } catch (IOException | RuntimeException e) {
            bridge.close();
            bridge = null;
            throw e;
        }
        LOG.log(handedOver ? Level.DEBUG : Level.INFO, "{0}: appending guest output to {1}", label, path);
        host.hostConnected(port);
    }

    @Override
    public boolean connected() {
        return bridge != null;
    }

    @Override
    public int outputFd() {
        return bridge == null ? -1 : bridge.fd();
    }

    @Override
    public int inputFd() {
        return -1;
    }

    /** Failed writes to the file so far (each is retried). */
    public long writeErrors() {
        return bridge == null ? 0 : bridge.errors();
    }

    @Override
    public void hostDisconnected() {
        // Write errors on the file are the pump's to retry; the bridge itself does not go away.
    }

    /** Reopened after a crash: the file is appended to again: bytes its pump had not written yet are lost with the crashed process. */
    @Override
    public Handed checkpoint() {
        return Handed.reopen();
    }

    @Override
    public String describe() {
        return "file " + path;
    }

    @Override
    public void close() {
        if (bridge != null) {
            if (host != null) {
                host.unwatch(bridge.fd());
            }
            bridge.close(); // the pump writes what it holds, then closes the file
            bridge = null;
        }
    }
}
