package io.vportd.console.endpoint;

import java.nio.file.Path;
import java.util.Objects;

/**
 * Where the host side of a port lives. Exactly one per port. {@link #toSpec()} gives back the
 * port-spec spelling (without {@code nr=}).
 */
public sealed interface EndpointSpec {

    /** The filesystem path this endpoint creates or writes, or null (used for conflict checks). */
    default Path ownedPath() {
        return null;
    }

    /** The spec spelling, e.g. {@code socket=/run/vm1/clip.sock}. */
    String toSpec();

    /** A Unix stream socket the daemon listens on; one client at a time. */
    record UnixSocket(Path path) implements EndpointSpec {
        public UnixSocket {
            Objects.requireNonNull(path, "path");
        }

        @Override public Path ownedPath() { return path; }
        @Override public String toSpec() { return "socket=" + path; }
    }

    /** A Unix stream socket the daemon connects to (and reconnects to when it goes away). */
    record UnixClient(Path path) implements EndpointSpec {
        public UnixClient {
            Objects.requireNonNull(path, "path");
        }

        @Override public String toSpec() { return "unix-client=" + path; }
    }

    /** A TCP listener; host defaults to 127.0.0.1; port 0 binds any free port. */
    record Tcp(String host, int port) implements EndpointSpec {
        public static final String DEFAULT_HOST = "127.0.0.1";

        public Tcp {
            host = host == null || host.isEmpty() ? DEFAULT_HOST : host;
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException("TCP port must be 0..65535, got " + port);
            }
        }

        @Override public String toSpec() {
            return "tcp=" + (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
        }
    }

    /** A pseudo terminal; {@code link} (nullable) is a symlink made to the pty's slave side. */
    record Pty(Path link) implements EndpointSpec {
        @Override public Path ownedPath() { return link; }
        @Override public String toSpec() { return link == null ? "pty" : "pty=" + link; }
    }

    /** Guest output appended to a file; nothing is ever sent to the guest. */
    record FileOut(Path path) implements EndpointSpec {
        public FileOut {
            Objects.requireNonNull(path, "path");
        }

        @Override public Path ownedPath() { return path; }
        @Override public String toSpec() { return "file=" + path; }
    }

    /** The daemon's own stdin/stdout (at most one port). */
    record Stdio() implements EndpointSpec {
        @Override public String toSpec() { return "stdio"; }
    }

    /** Discards guest output and never sends anything to the guest. */
    record Null() implements EndpointSpec {
        @Override public String toSpec() { return "null"; }
    }

    /** The web console ({@code --web-listen}): input from its interactive writer, output to its viewers. */
    record Web() implements EndpointSpec {
        @Override public String toSpec() { return "web"; }
    }
}
