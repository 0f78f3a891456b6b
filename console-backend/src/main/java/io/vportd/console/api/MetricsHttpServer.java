package io.vportd.console.api;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.vportd.console.cli.HostPort;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/** {@code GET /metrics} over HTTP (the JDK's built-in server) for --metrics-listen. */
public final class MetricsHttpServer implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("vportd.api");

    private final HttpServer server;

    private MetricsHttpServer(HttpServer server) {
        this.server = server;
    }

    public static MetricsHttpServer start(HostPort listen, Supplier<String> metrics) throws IOException {
        HttpServer s = HttpServer.create(new InetSocketAddress(listen.host(), listen.port()), 8);
        s.createContext("/", exchange -> {
            try (exchange) {
                serve(exchange, metrics);
            }
        });
        s.setExecutor(Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().daemon().name("vportd-metrics").unstarted(r)));
        s.start();
        // the bound port, which is the one asked for unless that was 0 (any free port)
        LOG.log(Level.INFO, "metrics served on http://{0}/metrics", new HostPort(listen.host(), s.getAddress().getPort()));
        return new MetricsHttpServer(s);
    }

    /**
     * After a live hand-over: the previous process still holds the address until it exits (a few
     * milliseconds later), so binding is retried for up to {@link #REBIND_MS}. A scrape meanwhile
     * is refused; the metrics listener is the one descriptor not handed over (the JDK's HTTP
     * server cannot adopt a listening socket).
     */
    public static MetricsHttpServer startRetrying(HostPort listen, Supplier<String> metrics) throws IOException {
        long deadline = System.nanoTime() + REBIND_MS * 1_000_000L;
        while (true) {
            try {
                return start(listen, metrics);
            } catch (java.net.BindException e) {
                if (System.nanoTime() - deadline > 0) {
                    throw e;
                }
                java.util.concurrent.locks.LockSupport.parkNanos(20_000_000L);
            }
        }
    }

    static final long REBIND_MS = 5000;

    private static void serve(HttpExchange ex, Supplier<String> metrics) throws IOException {
        String path = ex.getRequestURI().getPath();
        if (!path.equals("/metrics") && !path.equals("/")) {
            ex.sendResponseHeaders(404, -1);
            return;
        }
        if (!ex.getRequestMethod().equals("GET") && !ex.getRequestMethod().equals("HEAD")) {
            ex.getResponseHeaders().set("Allow", "GET, HEAD");
            ex.sendResponseHeaders(405, -1);
            return;
        }
        byte[] body;
        try {
            body = metrics.get().getBytes(StandardCharsets.UTF_8);
        } catch (RuntimeException e) {
            byte[] msg = ("cannot collect metrics: " + e.getMessage() + "\n").getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(503, msg.length);
            try (OutputStream o = ex.getResponseBody()) {
                o.write(msg);
            }
            return;
        }
        ex.getResponseHeaders().set("Content-Type", Metrics.CONTENT_TYPE);
        if (ex.getRequestMethod().equals("HEAD")) {
            ex.sendResponseHeaders(200, -1);
            return;
        }
        ex.sendResponseHeaders(200, body.length);
        try (OutputStream o = ex.getResponseBody()) {
            o.write(body);
        }
    }

    /** The bound address (useful when port 0 was asked for). */
    public InetSocketAddress address() {
        return server.getAddress();
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
