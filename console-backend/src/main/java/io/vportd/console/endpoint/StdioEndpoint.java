package io.vportd.console.endpoint;

import io.vportd.sys.NativeException;
import io.vportd.sys.Posix;
import java.io.IOException;
import java.lang.System.Logger.Level;

/**
 * The daemon's own standard input and output: a console in the foreground. When standard input
 * is a terminal it is put in raw mode (so keys reach the guest as typed) and restored on close and
 * at exit. Input that cannot be polled (a regular file, /dev/null) is not read.
 */
public final class StdioEndpoint implements Endpoint {

    private static final System.Logger LOG = System.getLogger("vportd.endpoint");

    private final String label;
    private final int stdinFd;
    private final int stdoutFd;
    private EndpointHost host;
    private int inFd = -1;
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
    public void start(EndpointHost host, int port) throws IOException {
        this.host = host;
        if (Posix.isatty(stdoutFd)) {
            terminal = stdoutFd;
        } else if (Posix.isatty(stdinFd)) {
            terminal = stdinFd;
        }
        if (Posix.isatty(stdinFd)) {
            savedMode = Posix.enterRawMode(stdinFd);
            Runtime.getRuntime().addShutdownHook(new Thread(this::restoreTerminal, "vportd-tty-restore"));
        }
        try {
            host.watch(stdinFd, Posix.EPOLLIN | Posix.EPOLLRDHUP | Posix.EPOLLET, port, EndpointHost.ROLE_CONNECTION);
            Posix.setNonBlocking(stdinFd, true);
            inFd = stdinFd;
        } catch (NativeException e) {
            // EPERM: standard input is a regular file or /dev/null, which readiness cannot watch.
            LOG.log(Level.INFO, "{0}: standard input cannot be watched ({1}); guest input disabled",
                    label, e.getMessage());
        }
        host.hostConnected(port);
    }

    @Override
    public boolean connected() {
        return true;
    }

    @Override
    public int outputFd() {
        return stdoutFd;
    }

    @Override
    public int terminalFd() {
        return terminal;
    }

    @Override
    public int inputFd() {
        return inFd;
    }

    @Override
    public void hostDisconnected() {
        // End of standard input: keep the output side; stop reading.
        if (inFd >= 0) {
            host.unwatch(inFd);
            inFd = -1;
            LOG.log(Level.INFO, "{0}: standard input ended", label);
        }
    }

    @Override
    public String describe() {
        return "stdio";
    }

    private synchronized void restoreTerminal() {
        if (savedMode != null) {
            try {
                Posix.tcsetattr(stdinFd, savedMode);
            } catch (NativeException e) {
                LOG.log(Level.WARNING, "{0}: cannot restore the terminal mode: {1}", label, e.getMessage());
            }
            savedMode = null;
        }
    }

    @Override
    public void close() {
        if (inFd >= 0) {
            host.unwatch(inFd);
            try {
                Posix.setNonBlocking(stdinFd, false);
            } catch (NativeException e) {
                LOG.log(Level.DEBUG, "{0}: cannot clear O_NONBLOCK on standard input: {1}", label, e.getMessage());
            }
            inFd = -1;
        }
        restoreTerminal();
    }
}
