package io.vportd.console.endpoint;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;

/** Handling of socket files left behind by an earlier run. */
public final class SocketFiles {

    private static final System.Logger LOG = System.getLogger("vportd.endpoint");

    private SocketFiles() {
    }

    /**
     * Removes {@code path} when it is a socket nobody listens on any more; refuses (with an
     * exception that says why) when it is something else or when a live server answers on it.
     */
    public static void removeStale(Path path, String who) throws IOException {
        PosixFileAttributes attrs = Files.readAttributes(path, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (!attrs.isOther()) {
            throw new IOException(who + ": " + path + " exists and is not a socket; refusing to replace it");
        }
        try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            probe.connect(UnixDomainSocketAddress.of(path));
            throw new IOException(who + ": something is already serving " + path + " (another vportd?)");
        } catch (java.net.ConnectException refused) {
            LOG.log(Level.INFO, "{0}: removing stale socket file {1} left by an earlier run", who, path);
            Files.delete(path);
        }
    }
}
