package io.vportd.console.endpoint;

import io.vportd.sys.Fd;
import io.vportd.sys.Epoll;
import io.vportd.sys.Io;
import io.vportd.sys.Terminal;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * A pseudo terminal: the daemon keeps the master side, a user opens the slave ({@code /dev/pts/N},
 * printed in the log and in listings; optionally reachable through a symlink that is replaced
 * only if it is a symlink). The daemon also keeps one slave descriptor open, in raw mode, so the
 * terminal exists (and buffers guest output, with back-pressure when full) while no user has it
 * open, and nothing is echoed back to the guest.
 */
public final class PtyEndpoint implements Endpoint {

    private static final System.Logger LOG = System.getLogger("vportd.endpoint");

    private final Path link;
    private final String label;
    private EndpointHost host;
    private Fd master;
    private Fd slave;
    private String slavePath;
    private boolean linked;
    /** Rebuilt from a live hand-over: its start logs at DEBUG (the hand-over logs one line for all ports). */
    private boolean handedOver;

    public PtyEndpoint(Path link, String portLabel) {
        this.link = link;
        this.label = portLabel;
    }

    @Override
    public void open() throws IOException {
        Terminal.Pty pty = Terminal.openPty();
        master = pty.master();
        slavePath = pty.slavePath();
        try {
            slave = Io.open(Path.of(slavePath), Io.O_RDWR | Io.O_NOCTTY | Io.O_CLOEXEC, 0);
            Terminal.enterRawMode(slave.fd());
            Io.setNonBlocking(master.fd(), true);
            if (link != null) {
                if (Files.exists(link, LinkOption.NOFOLLOW_LINKS)) {
                    if (!Files.isSymbolicLink(link)) {
                        throw new IOException(label + ": " + link + " exists and is not a symlink; refusing to replace it");
                    }
                    Files.delete(link);
                }
                Files.createSymbolicLink(link, Path.of(slavePath));
                linked = true;
            }
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Rebuilt around the terminal (master, slave) handed over; the link, if any, is already there. */
    static PtyEndpoint adopted(Path link, String label, Handed handed) throws IOException {
        PtyEndpoint e = new PtyEndpoint(link, label);
        e.master = Endpoints.required(handed, "master", label);
        e.slave = handed.take("slave");
        e.slavePath = handed.facts().get("slave-path");
        e.linked = link != null;
        e.handedOver = true;
        return e;
    }

    private boolean filesDetached;

    @Override
    public java.util.List<Path> detachFiles() {
        filesDetached = true;
        return linked ? java.util.List.of(link) : java.util.List.of();
    }

    @Override
    public Handed handover() {
        return new Handed().fd("master", master.fd()).fd("slave", slave == null ? -1 : slave.fd())
                .fact("slave-path", slavePath);
    }

    @Override
    public void start(EndpointHost host, int port) throws IOException {
        this.host = host;
        host.watch(master.fd(), Epoll.EPOLLIN | Epoll.EPOLLOUT | Epoll.EPOLLET, port, EndpointHost.ROLE_CONNECTION);
        LOG.log(handedOver ? Level.DEBUG : Level.INFO, "{0}: pty {1}{2}", label, slavePath,
                link == null ? "" : " (link " + link + ")");
        host.hostConnected(port);
    }

    /** The slave device, e.g. {@code /dev/pts/3}. */
    public String slavePath() {
        return slavePath;
    }

    @Override
    public boolean connected() {
        return master != null;
    }

    @Override
    public int outputFd() {
        return master == null ? -1 : master.fd();
    }

    @Override
    public int inputFd() {
        return outputFd();
    }

    /** A console port on a pty follows the window size the user's terminal program sets on it. */
    @Override
    public int terminalFd() {
        return master == null ? -1 : master.fd();
    }

    @Override
    public void hostDisconnected() {
        // The daemon holds the slave open, so the master never sees the terminal go away; an
        // error here is logged by the data plane and the terminal stays.
    }

    @Override
    public String describe() {
        return "pty " + slavePath + (link == null ? "" : " (link " + link + ")");
    }

    @Override
    public void close() {
        if (master != null) {
            if (host != null) {
                host.unwatch(master.fd());
            }
            master.closeQuietly();
            master = null;
        }
        if (slave != null) {
            slave.closeQuietly();
            slave = null;
        }
        if (linked && !filesDetached) {
            try {
                Files.deleteIfExists(link);
            } catch (IOException e) {
                LOG.log(Level.WARNING, "{0}: cannot remove {1}: {2}", label, link, e.getMessage());
            }
            linked = false;
        }
    }
}
