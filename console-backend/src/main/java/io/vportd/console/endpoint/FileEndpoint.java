package io.vportd.console.endpoint;

import io.vportd.sys.Fd;
import io.vportd.sys.Posix;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;

/** Guest output appended to a file. Output only; always "connected" once opened. */
public final class FileEndpoint implements Endpoint {

    private static final System.Logger LOG = System.getLogger("vportd.endpoint");

    private final Path path;
    private final String label;
    private Fd file;

    public FileEndpoint(Path path, String portLabel) {
        this.path = path;
        this.label = portLabel;
    }

    @Override
    public void start(EndpointHost host, int port) throws IOException {
        file = Posix.open(path, Posix.O_WRONLY | Posix.O_CREAT | Posix.O_APPEND | Posix.O_CLOEXEC, 0640);
        LOG.log(Level.INFO, "{0}: appending guest output to {1}", label, path);
        host.hostConnected(port);
    }

    @Override
    public boolean connected() {
        return file != null;
    }

    @Override
    public int outputFd() {
        return file == null ? -1 : file.fd();
    }

    @Override
    public int inputFd() {
        return -1;
    }

    @Override
    public void hostDisconnected() {
        // A write error on a file (disk full, I/O error) is not a peer leaving: keep the file and
        // let the data plane hold the guest's data; the error is logged where it happened.
    }

    @Override
    public String describe() {
        return "file " + path;
    }

    @Override
    public void close() {
        if (file != null) {
            file.closeQuietly();
            file = null;
        }
    }
}
