package io.vportd.console.endpoint;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.Inet;
import io.vportd.sys.NativeException;
import io.vportd.sys.Posix;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * A TCP listener one host client at a time connects to (127.0.0.1 unless another address is
 * configured). A second client is accepted and closed at once, with a log line.
 */
public final class TcpServerEndpoint implements Endpoint {

    private static final System.Logger LOG = System.getLogger("vportd.endpoint");

    private final String host;
    private final int requestedPort;
    private final String label;
    private EndpointHost endpointHost;
    private int port;
    private int boundPort;
    private Fd listener;
    private Fd client;

    public TcpServerEndpoint(String host, int tcpPort, String portLabel) {
        this.host = host;
        this.requestedPort = tcpPort;
        this.label = portLabel;
    }

    @Override
    public void start(EndpointHost host, int port) throws IOException {
        this.endpointHost = host;
        this.port = port;
        InetAddress address;
        try {
            address = InetAddress.getByName(this.host);
        } catch (UnknownHostException e) {
            throw new IOException(label + ": unknown TCP host '" + this.host + "'", e);
        }
        listener = Inet.tcpListen(address, requestedPort, 4);
        int bound = Inet.localPort(listener.fd());
        boundPort = bound > 0 ? bound : requestedPort;
        host.watch(listener.fd(), Posix.EPOLLIN, port, EndpointHost.ROLE_LISTEN);
        if (!address.isLoopbackAddress()) {
            LOG.log(Level.WARNING, "{0}: TCP endpoint listens on {1}, reachable from other hosts; the port has no "
                    + "authentication", label, address.getHostAddress());
        }
        LOG.log(Level.INFO, "{0}: listening on tcp {1}:{2}", label, address.getHostAddress(), Integer.toString(boundPort));
    }

    /** The TCP port actually bound. */
    public int boundPort() {
        return boundPort;
    }

    @Override
    public void onListenReady(int events) {
        while (true) {
            int fd = Posix.accept(listener.fd(), true);
            if (fd < 0) {
                if (fd != -Errno.EAGAIN) {
                    LOG.log(Level.WARNING, "{0}: TCP accept failed: {1}", label, Errno.describe(-fd));
                }
                return;
            }
            if (client != null) {
                LOG.log(Level.WARNING, "{0}: a host client is already connected over TCP; refusing another", label);
                Posix.close(fd);
                continue;
            }
            Fd c = Fd.adopt(fd);
            Inet.tcpNoDelay(fd);
            try {
                endpointHost.watch(fd, Posix.EPOLLIN | Posix.EPOLLOUT | Posix.EPOLLRDHUP | Posix.EPOLLET, port,
                        EndpointHost.ROLE_CONNECTION);
            } catch (NativeException e) {
                LOG.log(Level.WARNING, "{0}: cannot watch new TCP client: {1}", label, e.getMessage());
                c.closeQuietly();
                continue;
            }
            client = c;
            LOG.log(Level.INFO, "{0}: TCP host client connected", label);
            endpointHost.hostConnected(port);
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
            endpointHost.unwatch(client.fd());
            client.closeQuietly();
            client = null;
            LOG.log(Level.INFO, "{0}: TCP host client disconnected", label);
        }
    }

    @Override
    public String describe() {
        return "tcp " + (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + (boundPort > 0 ? boundPort : requestedPort);
    }

    @Override
    public void close() {
        if (client != null) {
            endpointHost.unwatch(client.fd());
            client.closeQuietly();
            client = null;
        }
        if (listener != null) {
            endpointHost.unwatch(listener.fd());
            listener.closeQuietly();
            listener = null;
        }
    }
}
