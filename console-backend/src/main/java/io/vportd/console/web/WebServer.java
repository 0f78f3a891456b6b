package io.vportd.console.web;

import io.vportd.console.api.PortManager;
import io.vportd.console.device.PortEvent;
import io.vportd.console.device.PortEventListener;
import io.vportd.telemetry.LogLimiter;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;

/**
 * The web console ({@code --web-listen}): HTTP pages and WebSockets on one NIO selector thread of
 * its own. The data plane never waits for it: port events reach it through a bounded queue
 * (dropped and counted when full), guest output through each terminal's {@code LogFollower}
 * (which the data plane drops when a browser falls behind), host input through a non-blocking
 * pipe. Every browser has a bounded outbound buffer; one that does not take its output is
 * dropped and counted. HTTP routing and the WebSocket sessions are in {@link WebRoutes}; this
 * class owns the socket, the loop and the life of connections.
 */
public final class WebServer implements PortEventListener, AutoCloseable {

    static final System.Logger LOG = System.getLogger("vportd.web");
    /** Connections open at once; more are closed at once (counted). */
    static final int MAX_CONNECTIONS = 64;
    /** An HTTP request must arrive whole within this time. */
    static final long REQUEST_TIMEOUT_NANOS = 10_000_000_000L;
    /** The loop wakes at least this often to move terminal output (a follower cannot wake a selector). */
    static final long POLL_MILLIS = 20;
    /** Port lists on the device page are refreshed this often (byte counters change without events). */
    static final long REFRESH_NANOS = 1_000_000_000L;

    private final ServerSocketChannel listener;
    private final Selector selector;
    private final WebStats stats = new WebStats();
    private final ArrayBlockingQueue<PortEvent> events = new ArrayBlockingQueue<>(1024);
    final LogLimiter clientLog = new LogLimiter(LOG);
    private final List<WebConnection> connections = new ArrayList<>();
    private final WebRoutes routes;
    private final Thread thread;
    private volatile boolean running = true;
    private final int boundPort;

    private WebServer(ServerSocketChannel listener, Selector selector, String host, String token, PortManager ports,
                      String device) throws IOException {
        this.listener = listener;
        this.selector = selector;
        this.boundPort = ((InetSocketAddress) listener.getLocalAddress()).getPort();
        this.routes = new WebRoutes(this, new WebAuth(token, host, boundPort), ports, device, stats);
        this.thread = Thread.ofPlatform().daemon().name("vportd-web").unstarted(this::loop);
    }

    /**
     * Binds {@code host:port} (port 0: any free one) and starts serving.
     *
     * @param device the device's id in URLs ({@code /d/DEVICE/...}); vportd serves one device per process
     */
    public static WebServer start(String host, int port, String token, PortManager ports, String device)
            throws IOException {
        ServerSocketChannel l = ServerSocketChannel.open();
        Selector s = null;
        try {
            l.bind(new InetSocketAddress(host, port), 64);
            l.configureBlocking(false);
            s = Selector.open();
            l.register(s, SelectionKey.OP_ACCEPT);
            WebServer w = new WebServer(l, s, host, token, ports, device);
            w.thread.start();
            return w;
        } catch (IOException | RuntimeException e) {
            l.close();
            if (s != null) {
                s.close();
            }
            throw e;
        }
    }

    public int port() {
        return boundPort;
    }

    public WebStats stats() {
        return stats;
    }

    /** Data-plane thread: never blocks; a full queue drops the event (the next refresh shows the state). */
    @Override
    public void onPortEvent(PortEvent event) {
        if (!events.offer(event)) {
            stats.eventsDropped.incrementAndGet();
        }
    }

    private void loop() {
        long nextRefresh = System.nanoTime() + REFRESH_NANOS;
        List<PortEvent> batch = new ArrayList<>();
        while (running) {
            try {
                selector.select(POLL_MILLIS);
            } catch (IOException e) {
                LOG.log(Level.ERROR, "web console: select failed: {0}", e.getMessage());
                return;
            }
            if (!running) {
                break;
            }
            for (SelectionKey k : selector.selectedKeys()) {
                try {
                    if (k.isValid() && k.isAcceptable()) {
                        accept();
                    } else if (k.isValid()) {
                        WebConnection c = (WebConnection) k.attachment();
                        if (k.isWritable() && !c.flush()) {
                            drop(c);
                            continue;
                        }
                        if (k.isValid() && k.isReadable()) {
                            read(c);
                        }
                    }
                } catch (RuntimeException e) { // a bug; a browser may trigger it again and again: rate-limited
                    clientLog.log(Level.ERROR, "web console: dropping a connection after {0}", e.toString());
                    if (k.attachment() instanceof WebConnection c) {
                        drop(c);
                    }
                }
            }
            selector.selectedKeys().clear();
            long now = System.nanoTime();
            batch.clear();
            events.drainTo(batch);
            boolean refresh = !batch.isEmpty() || now - nextRefresh >= 0;
            if (now - nextRefresh >= 0) {
                nextRefresh = now + REFRESH_NANOS;
            }
            if (refresh) {
                routes.publishPorts(batch);
            }
            for (int i = connections.size() - 1; i >= 0; i--) {
                WebConnection c = connections.get(i);
                if (c.kind == WebConnection.Kind.HTTP && now - c.openedNanos > REQUEST_TIMEOUT_NANOS) {
                    stats.badRequests.incrementAndGet();
                    drop(c);
                    continue;
                }
                if (c.kind == WebConnection.Kind.TERMINAL && !c.closeAfterFlush) {
                    routes.pumpOutput(c);
                }
                finish(c);
            }
        }
    }

    private void accept() {
        SocketChannel ch;
        try {
            ch = listener.accept();
        } catch (IOException e) {
            clientLog.log(Level.WARNING, "web console: accept failed: {0}", e.getMessage());
            return;
        }
        if (ch == null) {
            return;
        }
        stats.connections.incrementAndGet();
        try {
            if (connections.size() >= MAX_CONNECTIONS) {
                stats.connectionsRefused.incrementAndGet();
                clientLog.log(Level.WARNING, "web console: {0} connections open already; one refused", MAX_CONNECTIONS);
                ch.close();
                return;
            }
            ch.configureBlocking(false);
            ch.setOption(java.net.StandardSocketOptions.TCP_NODELAY, true);
            SelectionKey k = ch.register(selector, SelectionKey.OP_READ);
            WebConnection c = new WebConnection(ch, k);
            k.attach(c);
            connections.add(c);
            stats.open.incrementAndGet();
        } catch (IOException e) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // nothing more to do
            }
        }
    }

    private void read(WebConnection c) {
        if (c.closed) {
            return;
        }
        if (c.closeAfterFlush) { // answered already: what else comes is not read
            c.in.clear();
        }
        int n;
        try {
            if (!c.in.hasRemaining()) {
                // HTTP: the head and body did not fit; WebSocket: cannot happen (a frame is consumed whole)
                stats.badRequests.incrementAndGet();
                routes.refuse(c, 431, "Request Header Fields Too Large");
                return;
            }
            n = c.channel.read(c.in);
        } catch (IOException e) {
            drop(c);
            return;
        }
        if (n < 0) {
            drop(c);
            return;
        }
        if (c.kind == WebConnection.Kind.HTTP) {
            routes.http(c);
        } else {
            routes.frames(c);
        }
        finish(c);
    }

    /** Sends what is queued; closes a connection that is done or broken. */
    private void finish(WebConnection c) {
        if (c.closed) {
            return;
        }
        if (!c.flush()) {
            drop(c);
            return;
        }
        if (c.closeAfterFlush && !c.hasOutput()) {
            drop(c);
        }
    }

    /** A browser that did not take its output: dropped, counted, logged (rate-limited). */
    void dropSlow(WebConnection c, String what) {
        drop(c);
        // counted once dropped: whoever sees the count sees the browser gone (its follower cancelled)
        stats.slowClientsDropped.incrementAndGet();
        clientLog.log(Level.WARNING, "web console: a browser {0} did not take its output; dropped", what);
    }

    /** Closes a connection now (queued output is abandoned). */
    void drop(WebConnection c) {
        if (c.closed) {
            return;
        }
        c.closed = true;
        routes.closed(c);
        c.key.cancel();
        try {
            c.channel.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        connections.remove(c);
        stats.open.decrementAndGet();
    }

    List<WebConnection> connections() {
        return connections;
    }

    /** Stops serving; browsers see their connections end (they reconnect to the next process after a hand-over). */
    @Override
    public void close() {
        running = false;
        selector.wakeup();
        try {
            thread.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (WebConnection c : new ArrayList<>(connections)) {
            drop(c);
        }
        try {
            listener.close();
            selector.close();
        } catch (IOException e) {
            LOG.log(Level.WARNING, "web console: closing: {0}", e.getMessage());
        }
    }
}
