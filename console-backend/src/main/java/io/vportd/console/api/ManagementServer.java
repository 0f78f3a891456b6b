package io.vportd.console.api;

import io.vportd.console.device.PortEvent;
import io.vportd.console.device.PortEventListener;
import io.vportd.console.device.PortRequestException;
import io.vportd.console.endpoint.SocketFiles;
import io.vportd.console.portlog.LogFollower;
import io.vportd.telemetry.LogLimiter;
import io.vportd.telemetry.MetricSet;
import io.vportd.telemetry.SharedCounter;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.Base64;
import java.time.temporal.ChronoUnit;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The management socket: a Unix stream socket (mode 0600) speaking {@link ApiProtocol}, one JSON
 * object per line each way. Several clients may be connected (at most {@link #MAX_CLIENTS});
 * each gets exactly one response per request, in order, and the port events once it subscribed.
 * A client that sends garbage gets an error response and may go on; one that sends a line
 * longer than {@link #MAX_LINE} bytes gets an error and is disconnected (the line cannot be
 * resynchronised). Events go to each subscriber through a bounded queue; a subscriber that does
 * not read loses events (counted, and told with an {@code events-dropped} event) instead of
 * slowing the data plane.
 */
public final class ManagementServer implements PortEventListener, AutoCloseable {

    private static final System.Logger LOG = System.getLogger("vportd.api");

    public static final int MAX_CLIENTS = 16;
    public static final int MAX_LINE = 64 * 1024;
    static final int OUTBOX = 1024;
    /** Bytes of port output per log event line (base64 makes it a third longer). */
    static final int FOLLOW_CHUNK = 16 * 1024;

    private final Path path;
    private final ApiProtocol protocol;
    private final ServerSocketChannel server;
    private final Set<Client> clients = ConcurrentHashMap.newKeySet();
    private final MetricSet metrics = new MetricSet();
    private final SharedCounter eventsDropped = metrics.shared("vportd_api_events_dropped_total",
            "Port events not delivered to a management client that did not read them.");
    /** Lines a management client can cause. */
    private final LogLimiter clientLog = new LogLimiter(LOG);
    private final Thread acceptor;
    private volatile boolean closed;

    private ManagementServer(Path path, ApiProtocol protocol, ServerSocketChannel server) {
        this.path = path;
        this.protocol = protocol;
        this.server = server;
        this.acceptor = Thread.ofPlatform().daemon().name("vportd-api-accept").unstarted(this::acceptLoop);
    }

    /** Binds {@code path} (replacing a stale socket file only) and starts serving. */
    public static ManagementServer start(Path path, PortManager ports) throws IOException {
        return start(path, DeviceDirectory.single(ports, null));
    }

    /** Binds {@code path} (replacing a stale socket file only) and serves the devices of {@code devices}. */
    public static ManagementServer start(Path path, DeviceDirectory devices) throws IOException {
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            SocketFiles.removeStale(path, "--api-socket");
        }
        return serve(path, path, devices);
    }

    /**
     * After a live hand-over: binds a fresh socket beside {@code path} and renames it over the
     * previous process's one, so a client connecting meanwhile reaches one or the other, never
     * nothing. Clients still connected to the previous process lose their connection when it exits.
     */
    public static ManagementServer replacing(Path path, PortManager ports) throws IOException {
        return replacing(path, DeviceDirectory.single(ports, null));
    }

    /** As {@link #replacing(Path, PortManager)}, serving the devices of {@code devices}. */
    public static ManagementServer replacing(Path path, DeviceDirectory devices) throws IOException {
        Path fresh = path.resolveSibling(path.getFileName() + ".new");
        Files.deleteIfExists(fresh);
        ManagementServer s = serve(fresh, path, devices);
        try {
            Files.move(fresh, path, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            s.close();
            throw e;
        }
        return s;
    }

    private static ManagementServer serve(Path bindAt, Path path, DeviceDirectory devices) throws IOException {
        ServerSocketChannel ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.bind(UnixDomainSocketAddress.of(bindAt), 8);
            // With the usual umask others cannot connect before this (connect needs write permission).
            Files.setPosixFilePermissions(bindAt, PosixFilePermissions.fromString("rw-------"));
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
        ManagementServer s = new ManagementServer(path, new ApiProtocol(devices), ch);
        s.acceptor.start();
        LOG.log(Level.INFO, "management API listening on {0}", path);
        return s;
    }

    public Path path() {
        return path;
    }

    /** Events no subscriber could take (its queue was full). */
    /** This server's counters, to register with the metric registry. */
    public MetricSet metrics() {
        return metrics;
    }

    public long eventsDropped() {
        return eventsDropped.get();
    }

    static final long ACCEPT_PAUSE_MIN_MS = 50;
    static final long ACCEPT_PAUSE_MAX_MS = 2000;
    private final SharedCounter acceptFailures = metrics.shared("vportd_api_accept_failures_total",
            "Failed accepts on the management socket (e.g. out of descriptors); the acceptor rests and retries.");
    private long acceptPauseMs = ACCEPT_PAUSE_MIN_MS;

    /** Accepts that failed (each retried after a pause). */
    public long acceptFailures() {
        return acceptFailures.get();
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel c;
            try {
                c = server.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (closed) {
                    return;
                }
                // Out of descriptors (EMFILE) and the like: the listener is fine, so rest and try
                // again; giving up would leave the daemon without its management API until restart.
                acceptFailures.incrementAndGet();
                if (acceptPauseMs == ACCEPT_PAUSE_MIN_MS || acceptPauseMs == ACCEPT_PAUSE_MAX_MS) {
                    LOG.log(Level.WARNING, "management API accept failed: {0}; retrying in {1} ms",
                            e.getMessage(), Long.toString(acceptPauseMs));
                }
                try {
                    Thread.sleep(acceptPauseMs);
                } catch (InterruptedException interrupted) {
                    return;
                }
                acceptPauseMs = Math.min(ACCEPT_PAUSE_MAX_MS, acceptPauseMs * 2);
                continue;
            }
            acceptPauseMs = ACCEPT_PAUSE_MIN_MS;
            if (clients.size() >= MAX_CLIENTS) {
                try (c) {
                    c.write(ByteBuffer.wrap((ApiProtocol.error(null, "too-many-clients",
                            "at most " + MAX_CLIENTS + " management clients at a time") + "\n").getBytes(StandardCharsets.UTF_8)));
                } catch (IOException ignored) {
                    // the refusal is best effort
                }
                clientLog.log(Level.WARNING, "management API: refusing a client, {0} are connected", MAX_CLIENTS);
                continue;
            }
            Client client = new Client(c);
            clients.add(client);
            client.start();
        }
    }

    @Override
    public void onPortEvent(PortEvent event) {
        onPortEvent(null, event);
    }

    /** An event of device {@code device} (null in a daemon of one device: its events name none). */
    public void onPortEvent(String device, PortEvent event) {
        String line = null;
        for (Client c : clients) {
            if (c.subscribed) {
                if (line == null) {
                    line = ApiProtocol.eventLine(device, event, epochMicros());
                }
                c.offerEvent(line);
            }
        }
    }

    private static long epochMicros() {
        Instant now = Instant.now();
        return ChronoUnit.MICROS.between(Instant.EPOCH, now);
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException e) {
            LOG.log(Level.WARNING, "closing the management socket: {0}", e.getMessage());
        }
        for (Client c : clients) {
            c.close();
        }
        try {
            acceptor.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            Files.deleteIfExists(path);
        } catch (IOException e) {
            LOG.log(Level.WARNING, "cannot remove {0}: {1}", path, e.getMessage());
        }
    }

    /** One connected client: a reader thread (requests), a writer thread (responses and events). */
    private final class Client implements ApiProtocol.Session {
        private static final String STOP = new String("stop");

        final SocketChannel channel;
        final BlockingQueue<String> outbox = new ArrayBlockingQueue<>(OUTBOX);
        volatile boolean subscribed;
        long dropped; // guarded by this
        Thread reader;
        Thread writer;

        Client(SocketChannel channel) {
            this.channel = channel;
        }

        void start() {
            writer = Thread.ofPlatform().daemon().name("vportd-api-write").start(this::writeLoop);
            reader = Thread.ofPlatform().daemon().name("vportd-api-read").start(this::readLoop);
        }

        @Override
        public void subscribe(boolean on) {
            subscribed = on;
        }

        /** A follow asked for by the request being handled: started once its response is queued. */
        private LogFollower pendingFollower;
        private int pendingFollowNr;
        private volatile LogFollower follower;

        @Override
        public void follow(int nr, LogFollower f) {
            LogFollower current = follower;
            if (current != null && !current.cancelled() && !current.overflowed()) {
                f.cancel();
                throw new PortRequestException(PortRequestException.Reason.INVALID,
                        "this connection already follows a port; open another connection");
            }
            pendingFollower = f;
            pendingFollowNr = nr;
        }

        private void startPendingFollow() {
            LogFollower f = pendingFollower;
            if (f == null) {
                return;
            }
            pendingFollower = null;
            follower = f;
            int nr = pendingFollowNr;
            Thread.ofPlatform().daemon().name("vportd-api-follow").start(() -> forward(nr, f));
        }

        /** Turns a follower's bytes into log events on this connection until it ends or the client leaves. */
        private void forward(int nr, LogFollower f) {
            byte[] chunk = new byte[FOLLOW_CHUNK];
            try {
                while (channel.isOpen()) {
                    int n = f.read(chunk, 500_000_000L);
                    if (n < 0) {
                        String why = f.overflowed() ? "too-slow" : "port-removed";
                        if (f.overflowed()) {
                            clientLog.log(Level.WARNING, "management client following port {0} fell behind; dropped", nr);
                        }
                        queue("{\"event\":\"log-end\",\"data\":{\"nr\":" + nr + ",\"reason\":\"" + why + "\"}}");
                        return;
                    }
                    if (n > 0) {
                        queue("{\"event\":\"log\",\"data\":{\"nr\":" + nr + ",\"data\":\""
                                + Base64.getEncoder().encodeToString(java.util.Arrays.copyOf(chunk, n)) + "\"}}");
                    }
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                f.cancel();
            }
        }

        /** Queues a line, waiting while the client reads slowly (the follower's buffer absorbs it, or overflows). */
        private void queue(String line) throws InterruptedException {
            while (channel.isOpen() && !outbox.offer(line, 200, TimeUnit.MILLISECONDS)) {
                // the writer thread is behind; the data plane is not waiting for us
            }
        }

        synchronized void offerEvent(String line) {
            if (dropped > 0 && outbox.remainingCapacity() > 1) {
                outbox.offer("{\"event\":\"events-dropped\",\"data\":{\"count\":" + dropped + "}}");
                dropped = 0;
            }
            if (!outbox.offer(line)) {
                dropped++;
                long total = eventsDropped.incrementAndGet();
                clientLog.log(Level.WARNING, "management client does not read its events; {0} dropped so far", total);
            }
        }

        void respond(String line) throws InterruptedException {
            outbox.put(line);
        }

        private void readLoop() {
            ByteBuffer buf = ByteBuffer.allocate(MAX_LINE + 1);
            try {
                while (true) {
                    int n = channel.read(buf);
                    if (n < 0) {
                        break;
                    }
                    buf.flip();
                    int start = 0;
                    for (int i = buf.position(); i < buf.limit(); i++) {
                        if (buf.get(i) == '\n') {
                            String line = new String(buf.array(), start, i - start, StandardCharsets.UTF_8);
                            start = i + 1;
                            if (!line.isBlank()) {
                                respond(protocol.handle(line, this));
                                startPendingFollow();
                            }
                        }
                    }
                    buf.position(start);
                    buf.compact();
                    if (!buf.hasRemaining()) {
                        respond(ApiProtocol.error(null, ApiProtocol.REQUEST_TOO_LONG,
                                "a request line may be at most " + MAX_LINE + " bytes; closing the connection"));
                        break;
                    }
                }
            } catch (IOException e) {
                LOG.log(Level.DEBUG, "management client read ended: {0}", e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                subscribed = false;
                try {
                    // Responses already queued still go out; then the writer closes the connection.
                    if (!outbox.offer(STOP, 5, TimeUnit.SECONDS)) {
                        close();
                    }
                } catch (InterruptedException e) {
                    close();
                }
            }
        }

        private void writeLoop() {
            try {
                while (true) {
                    String line = outbox.poll(1, TimeUnit.SECONDS);
                    if (line == STOP || (line == null && !channel.isOpen())) {
                        break;
                    }
                    if (line == null) {
                        continue;
                    }
                    ByteBuffer b = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8));
                    while (b.hasRemaining()) {
                        channel.write(b);
                    }
                }
            } catch (IOException e) {
                LOG.log(Level.DEBUG, "management client write ended: {0}", e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                close();
            }
        }

        void close() {
            subscribed = false;
            LogFollower f = follower;
            if (f != null) {
                f.cancel();
            }
            clients.remove(this);
            try {
                channel.close();
            } catch (IOException ignored) {
                // closing is best effort
            }
            outbox.offer(STOP);
        }
    }
}
