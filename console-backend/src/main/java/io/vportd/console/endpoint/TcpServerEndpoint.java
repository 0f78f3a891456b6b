package io.vportd.console.endpoint;

import io.vportd.sys.Fd;
import io.vportd.sys.Epoll;
import io.vportd.sys.Inet;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * A TCP listener one host client at a time connects to (127.0.0.1 unless another address is
 * configured). A second client is accepted and closed at once, with a log line.
 */
public final class TcpServerEndpoint extends StreamEndpoint {

    private final String address;
    private final int requestedPort;
    private int boundPort;
    private InetAddress boundAddress;
    private Fd listener;

    public TcpServerEndpoint(String host, int tcpPort, String portLabel) {
        super(portLabel);
        this.address = host;
        this.requestedPort = tcpPort;
    }

    @Override
    public void open() throws IOException {
        InetAddress inet;
        try {
            inet = InetAddress.getByName(address);
        } catch (UnknownHostException e) {
            throw new IOException(label + ": unknown TCP host '" + address + "'", e);
        }
        listener = Inet.tcpListen(inet, requestedPort, 4);
        int bound = Inet.localPort(listener.fd());
        boundPort = bound > 0 ? bound : requestedPort;
        boundAddress = inet;
    }

    /** Rebuilt around a listener (and maybe a client) handed over by the previous process. */
    static TcpServerEndpoint adopted(String address, int tcpPort, String label, Handed handed) throws IOException {
        TcpServerEndpoint e = new TcpServerEndpoint(address, tcpPort, label);
        e.listener = Endpoints.required(handed, "listener", label);
        e.handedPeer = handed.take("peer");
        e.handedOver = true;
        int bound = Inet.localPort(e.listener.fd());
        e.boundPort = bound > 0 ? bound : tcpPort;
        try {
            e.boundAddress = InetAddress.getByName(address);
        } catch (UnknownHostException x) {
            e.close();
            throw new IOException(label + ": unknown TCP host '" + address + "'", x);
        }
        return e;
    }

    @Override
    public Handed handover() {
        return handedPeer(new Handed().fd("listener", listener.fd()));
    }

    @Override
    public void start(EndpointHost host, int port) throws IOException {
        Level level = startLevel();
        attach(host, port);
        host.watch(listener.fd(), Epoll.EPOLLIN, port, EndpointHost.ROLE_LISTEN);
        InetAddress inet = boundAddress;
        if (!inet.isLoopbackAddress()) {
            LOG.log(Level.WARNING, "{0}: TCP endpoint listens on {1}, reachable from other hosts; the port has no "
                    + "authentication", label, inet.getHostAddress());
        }
        LOG.log(level, "{0}: listening on tcp {1}:{2}", label, inet.getHostAddress(), Integer.toString(boundPort));
    }

    /** The TCP port actually bound. */
    public int boundPort() {
        return boundPort;
    }

    @Override
    public void onListenReady(int events) {
        acceptAll(listener, "TCP host client");
    }

    @Override
    void accepted(int fd) {
        Inet.tcpNoDelay(fd);
    }

    @Override
    public void hostDisconnected() {
        if (closeConnection()) {
            peerLog.log(Level.INFO, "{0}: TCP host client disconnected", label);
        }
    }

    @Override
    public String describe() {
        return "tcp " + (address.indexOf(':') >= 0 ? "[" + address + "]" : address) + ":"
                + (boundPort > 0 ? boundPort : requestedPort);
    }

    @Override
    public void close() {
        closeConnection();
        forgetPausedListener();
        if (listener != null) {
            if (host != null) {
                host.unwatch(listener.fd());
            }
            listener.closeQuietly();
            listener = null;
        }
    }
}
