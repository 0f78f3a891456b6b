package io.vportd.console.endpoint;

import io.vportd.sys.NativeException;
import io.vportd.sys.Epoll;
import io.vportd.sys.Io;
import io.vportd.sys.Terminal;
import java.io.IOException;
import java.lang.System.Logger.Level;

/**
 * The daemon's own standard input and output: a console in the foreground. When standard input
 * is a terminal it is put in raw mode (so keys reach the guest as typed) and restored on close and
 * at exit. Input that cannot be polled (a regular file, /dev/null) is not read.
 *
 * <p>Neither descriptor is touched by the data plane: each goes through a {@link BlockingFdBridge}
 * pump, so standard output piped to a reader that stopped reading fills the console backlog
 * (dropped and counted past it) instead of freezing every port, and standard input keeps its
 * blocking mode: O_NONBLOCK would change the open file description shared with the user's shell
 * (and stdout/stderr on a terminal), and would outlive a crash.
 */
public final class StdioEndpoint implements Endpoint {

    private static final System.Logger LOG = System.getLogger("vportd.endpoint");

    private final String label;
    private final int stdinFd;
    private final int stdoutFd;
    private EndpointHost host;
    private final io.vportd.telemetry.MetricSet metrics = new io.vportd.telemetry.MetricSet();
    private BlockingFdBridge output;
    private BlockingFdBridge input;
    private int terminal = -1;
    private byte[] savedMode;

    public StdioEndpoint(String portLabel) {
        this(portLabel, 0, 1);
    }

    /** A terminal-like endpoint on other descriptors (a PTY in tests); they stay the caller's. */
    public StdioEndpoint(String portLabel, int stdinFd, int stdoutFd) {
        this.label = portLabel;
        this.stdinFd = stdinFd;
        this.stdoutFd = stdoutFd;
    }

    @Override
    public void open() throws IOException {
        if (Terminal.isatty(stdoutFd)) {
            terminal = stdoutFd;
        } else if (Terminal.isatty(stdinFd)) {
            terminal = stdinFd;
        }
        if (Terminal.isatty(stdinFd)) {
            savedMode = Terminal.enterRawMode(stdinFd);
            Runtime.getRuntime().addShutdownHook(new Thread(this::restoreTerminal, "vportd-tty-restore"));
        }
        output = BlockingFdBridge.toSink(null, (addr, len) -> Io.write(stdoutFd, addr, len), label, "standard output",
                metrics);
        String why = unpollable(stdinFd);
        if (why == null) {
            input = BlockingFdBridge.fromSource(stdinFd, label, "standard input", metrics);
        } else {
            LOG.log(Level.INFO, "{0}: standard input cannot be watched ({1}); guest input disabled", label, why);
        }
    }

    @Override
    public void start(EndpointHost host, int port) throws IOException {
        this.host = host;
        host.watch(output.fd(), Epoll.EPOLLOUT | Epoll.EPOLLET, port, EndpointHost.ROLE_CONNECTION);
        if (input != null) {
            host.watch(input.fd(), Epoll.EPOLLIN | Epoll.EPOLLRDHUP | Epoll.EPOLLET, port, EndpointHost.ROLE_CONNECTION);
        }
        host.hostConnected(port);
    }

    @Override
    public boolean connected() {
        return true;
    }

    /**
     * Null when {@code fd} is something readiness can watch (a terminal, pipe or socket), else why
     * not: epoll refuses regular files and /dev/null with EPERM. Probed on a scratch epoll set.
     */
    private static String unpollable(int fd) throws NativeException {
        try (io.vportd.sys.Fd probe = Epoll.create()) {
            int r = Epoll.ctl(probe.fd(), Epoll.EPOLL_CTL_ADD, fd, Epoll.EPOLLIN, 0);
            return r < 0 ? io.vportd.sys.Errno.describe(-r) : null;
        }
    }

    @Override
    public io.vportd.telemetry.MetricSet metrics() {
        return metrics;
    }

    @Override
    public int outputFd() {
        return output == null ? -1 : output.fd();
    }

    @Override
    public int terminalFd() {
        return terminal;
    }

    @Override
    public int inputFd() {
        return input == null ? -1 : input.fd();
    }

    @Override
    public void hostDisconnected() {
        // End of standard input: keep the output side; stop reading.
        if (input != null) {
            host.unwatch(input.fd());
            input.close();
            input = null;
            LOG.log(Level.INFO, "{0}: standard input ended", label);
        }
    }

    /** Reopened after a crash: the recovering process has stdio of its own. */
    @Override
    public Handed checkpoint() {
        return Handed.reopen();
    }

    @Override
    public String describe() {
        return "stdio";
    }

    private synchronized void restoreTerminal() {
        if (savedMode != null) {
            try {
                Terminal.tcsetattr(stdinFd, savedMode);
            } catch (NativeException e) {
                LOG.log(Level.WARNING, "{0}: cannot restore the terminal mode: {1}", label, e.getMessage());
            }
            savedMode = null;
        }
    }

    @Override
    public void close() {
        if (input != null) {
            if (host != null) {
                host.unwatch(input.fd());
            }
            input.close(); // its pump ends at the next input (a blocked read cannot be taken back)
            input = null;
        }
        if (output != null) {
            if (host != null) {
                host.unwatch(output.fd());
            }
            output.close(); // the pump writes what it holds, then ends
            output = null;
        }
        restoreTerminal();
    }
}
