package io.vportd.console.endpoint;

import io.vportd.sys.Epoll;
import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.sys.NativeException;

/**
 * {@code web}: the port's host side is the web console ({@code --web-listen}). Guest output is
 * discarded here, like {@code null} (browsers get it through the port's tap, the same way
 * {@code ctl log --follow} does, with the replay ring first); host input comes from a pipe whose
 * write end the web console's interactive writer feeds ({@link WebInputs}). The pipe never ends,
 * so the guest always sees the port connected. Rebuilt with a fresh pipe after a hand-over (the
 * browsers reconnect). What it shares with {@code null} (no output descriptor, output discarded,
 * always connected, nothing to hand over) it inherits.
 */
public final class WebEndpoint extends NullEndpoint {

    private final String label;
    private Fd readEnd;
    private WebInputs.Input input;
    private EndpointHost host;
    private int port = -1;

    WebEndpoint(String label) {
        this.label = label;
    }

    @Override
    public void open() throws java.io.IOException {
        Fd[] p = Io.pipe();
        try {
            Io.setNonBlocking(p[0].fd(), true);
            Io.setNonBlocking(p[1].fd(), true);
        } catch (NativeException e) {
            p[0].closeQuietly();
            p[1].closeQuietly();
            throw e;
        }
        readEnd = p[0];
        input = new WebInputs.Input(p[1]);
    }

    @Override
    public void start(EndpointHost host, int port) throws java.io.IOException {
        if (readEnd == null) {
            open(); // adopted after a hand-over: a new pipe (nothing is carried)
        }
        this.host = host;
        this.port = port;
        host.watch(readEnd.fd(), Epoll.EPOLLIN | Epoll.EPOLLET, port, EndpointHost.ROLE_CONNECTION);
        WebInputs.register(port, input);
        host.hostConnected(port);
    }

    @Override
    public int inputFd() {
        return readEnd == null ? -1 : readEnd.fd();
    }

    @Override
    public void hostDisconnected() {
        // the write end stays open in this process: the pipe never reaches end of file
    }

    @Override
    public String describe() {
        return "web";
    }

    @Override
    public void close() {
        if (port >= 0) {
            WebInputs.unregister(port, input);
        }
        if (input != null) {
            input.close();
        }
        if (readEnd != null) {
            if (host != null) {
                host.unwatch(readEnd.fd());
            }
            readEnd.closeQuietly();
            readEnd = null;
        }
    }

    @Override
    public String toString() {
        return label + " web";
    }
}
