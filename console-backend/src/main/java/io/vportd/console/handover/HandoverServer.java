package io.vportd.console.handover;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vportd.console.device.DataPlane;
import io.vportd.console.device.DeviceSnapshot;
import io.vportd.sys.Fd;
import io.vportd.vhost.VhostUserServer;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The running daemon's side of a live hand-over. It listens on {@code SOCKET.handover} (mode
 * 0600, beside the vhost-user socket). A new vportd started with {@code --take-over} connects;
 * this side then stops the vhost-user server at a message boundary (rings stopped, held chains
 * handed back, partial ones carried), freezes the data plane, and sends the state record and
 * every descriptor. When the new process answers {@code ready} it is told {@code go} and this
 * process exits at once, leaving every descriptor open for the new one. If the new process
 * refuses, fails or goes silent before that, everything resumes as it was: the guest notices a
 * pause, nothing else.
 */
public final class HandoverServer implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("vportd.handover");

    /**
     * The record's JSON mapper, made on first use: a daemon starts the hand-over server before its
     * sockets listen, and making a mapper costs tens of milliseconds (calendar and locale data).
     */
    private static final class Json {
        static final ObjectMapper MAPPER = new ObjectMapper();
    }

    /** How long the new process has to say what it wants after connecting. */
    static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(5);
    /** How long the new process has to rebuild everything and answer ready. */
    static final Duration READY_TIMEOUT = Duration.ofSeconds(30);
    /** How long each port's log writer and file pump may take to write what they hold. */
    static final Duration PREPARE_TIMEOUT = Duration.ofSeconds(2);
    /** How long the vhost-user server may take to reach a message boundary. */
    static final Duration SUSPEND_TIMEOUT = Duration.ofSeconds(10);

    /**
     * What the running daemon is made of.
     *
     * @param socketPath    the vhost-user socket
     * @param apiSocket     the management socket, or null
     * @param metricsListen the metrics listener as given, or null
     * @param exit          run once the new process serves (the daemon exits without cleaning up)
     */
    public record Context(Path socketPath, Path apiSocket, String metricsListen, boolean allowUnsealedMemory,
                          VhostUserServer vhost, DataPlane dataPlane, Runnable exit) {
    }

    private final Context context;
    private final HandoverSocket socket;

    private final HandoverStats stats = new HandoverStats();

    /**
     * How this daemon runs work whose log lines must not be written; given, a daemon rehearses its
     * own stopping path on a throw-away device when a take-over is asked for (see {@link Rehearsal}).
     */
    public static void setUnheard(java.util.function.Consumer<Runnable> runner) {
        Rehearsal.setUnheard(runner);
    }

    /** The hand-over socket of a vhost-user socket path. */
    public static Path pathFor(Path socketPath) {
        return socketPath.resolveSibling(socketPath.getFileName() + ".handover");
    }

    private HandoverServer(Context context, HandoverSocket socket) {
        this.context = context;
        this.socket = socket;
        socket.start(this::serve);
    }

    /** Binds {@code SOCKET.handover} (replacing a stale socket file only) and starts listening. */
    public static HandoverServer start(Context context) throws IOException {
        return new HandoverServer(context, HandoverSocket.listen(pathFor(context.socketPath())));
    }

    /** Listens on the hand-over socket the previous process handed over. */
    public static HandoverServer adopt(Context context, Fd listener) {
        return new HandoverServer(context, HandoverSocket.adopt(pathFor(context.socketPath()), listener));
    }

    public Path path() {
        return socket.path();
    }

    /** The listening descriptor (it goes to the next process too). */
    int listenerFd() {
        return socket.fd();
    }

    public long failedHandovers() {
        return stats.failures();
    }

    /** This server's counters, to register with the metric registry. */
    public HandoverStats stats() {
        return stats;
    }

    /**
     * The new process's first frame, when it asks to take over; otherwise null, with the bad
     * request counted, logged (rate-limited) and, when it was readable, answered.
     */
    static ObjectNode takeOverRequest(HandoverLink link, HandoverStats stats, HandoverSocket socket) {
        ObjectNode request;
        try {
            request = (ObjectNode) Json.MAPPER.readTree(link.receiveFrame(System.nanoTime() + REQUEST_TIMEOUT.toNanos()));
        } catch (IOException | ClassCastException e) {
            stats.badRequests.incrementAndGet();
            socket.clientLog().log(Level.WARNING, "hand-over socket {0}: unreadable request: {1}", socket.path(),
                    e.getMessage());
            return null;
        }
        if (!"take-over".equals(request.path("op").asText())) {
            stats.badRequests.incrementAndGet();
            socket.clientLog().log(Level.WARNING, "hand-over socket {0}: unknown request ''{1}''", socket.path(),
                    request.path("op").asText());
            answer(link, "refused", "unknown request '" + request.path("op").asText() + "'");
            return null;
        }
        return request;
    }

    private void serve(HandoverLink link) {
        ObjectNode request = takeOverRequest(link, stats, socket);
        if (request == null) {
            return;
        }
        LOG.log(Level.INFO, "hand-over: process {0} asks to take over {1}", request.path("pid").asText("?"),
                context.socketPath());
        // Before anything stops: this process runs the sending code on throw-away records until it
        // is compiled, so the guest's pause does not include it running cold.
        long warming = System.nanoTime();
        context.dataPlane().metrics().counterValues(); // read again in the pause: not for the first time there
        Rehearsal.warmSender();
        LOG.log(Level.DEBUG, "hand-over: sender warmed up in {0} ms", (System.nanoTime() - warming) / 1_000_000);
        long started = System.nanoTime();
        VhostUserServer.Suspension suspension;
        try {
            suspension = context.vhost().suspend(SUSPEND_TIMEOUT);
        } catch (IOException e) {
            refuse(link, "cannot stop the vhost-user session: " + e.getMessage());
            return;
        }
        try {
            context.dataPlane().prepareHandover(PREPARE_TIMEOUT.toMillis()); // waits here, not on the data plane
        } catch (IOException | RuntimeException e) {
            suspension.resume();
            refuse(link, e.getMessage());
            return;
        }
        long suspended = System.nanoTime();
        DeviceSnapshot snapshot;
        try {
            snapshot = context.dataPlane().freezeForHandover();
        } catch (IOException | RuntimeException e) {
            suspension.resume();
            refuse(link, e.getMessage());
            return;
        }
        String why;
        try {
            HandoverState.Encoded state = HandoverState.encode(new HandoverState.Daemon(context.socketPath().toString(),
                    context.apiSocket() == null ? null : context.apiSocket().toString(), context.metricsListen(),
                    context.allowUnsealedMemory(), socket.fd(), suspension.listenerFd(), suspension.connectionFd(),
                    suspension.replay(), snapshot, context.dataPlane().metrics().counterValues()));
            sendState(link, state, suspension.stoppedAtNanos());
            long sent = System.nanoTime();
            ObjectNode reply = reply(link);
            boolean ready = isReady(reply);
            if (ready) {
                answer(link, "go", null);
            }
            // Logged once the new process has its answer: formatting this line inside the pause
            // would take CPU time the new process needs.
            LOG.log(Level.INFO, "hand-over: rings stopped in {0} ms, data plane frozen in {1} ms, state ({2} bytes, {3} "
                    + "descriptors) sent in {4} ms", ms(suspended - started), ms(snapshot.frozenAtNanos() - suspended),
                    state.json().length, state.fds().length, ms(sent - snapshot.frozenAtNanos()));
            if (ready) {
                LOG.log(Level.INFO, "hand-over: the new process serves {0} now ({1} ms after the request); exiting",
                        context.socketPath(), (System.nanoTime() - started) / 1_000_000);
                suspension.handedOver();
                socket.handedOver();
                context.exit().run();
                return;
            }
            why = "the new process refused: " + reply.path("why").asText("no reason given");
        } catch (IOException | RuntimeException e) {
            why = "the new process failed: " + e.getMessage();
        }
        context.dataPlane().thaw();
        suspension.resume();
        stats.failed.incrementAndGet();
        LOG.log(Level.WARNING, "hand-over did not happen ({0}); this process serves on", why);
    }

    /**
     * Sends the state the way {@link TakeOver#receive} reads it: a header frame (the descriptor
     * count, and when the rings began to stop: the pause is measured from there), the record, then
     * the descriptors in batches.
     */
    static void sendState(HandoverLink link, HandoverState.Encoded state, long ringsStoppedAtNanos) throws IOException {
        ObjectNode header = Json.MAPPER.createObjectNode();
        header.put("op", "state");
        header.put("fdCount", state.fds().length);
        header.put("ringsStoppedAtNanos", ringsStoppedAtNanos);
        link.sendFrame(Json.MAPPER.writeValueAsBytes(header));
        link.sendFrame(state.json());
        link.sendFds(state.fds());
    }

    /** The new process's answer to the state (ready, or refused and why). */
    static ObjectNode reply(HandoverLink link) throws IOException {
        try {
            return (ObjectNode) Json.MAPPER.readTree(link.receiveFrame(System.nanoTime() + READY_TIMEOUT.toNanos()));
        } catch (ClassCastException e) {
            throw new IOException("the new process's answer is not a JSON object");
        }
    }

    static boolean isReady(ObjectNode reply) {
        return "ready".equals(reply.path("op").asText());
    }

    static String ms(long nanos) {
        return String.format(java.util.Locale.ROOT, "%.1f", nanos / 1e6);
    }

    private void refuse(HandoverLink link, String why) {
        stats.failed.incrementAndGet();
        LOG.log(Level.WARNING, "hand-over refused: {0}; this process serves on", why);
        answer(link, "refused", why);
    }

    static void answer(HandoverLink link, String op, String why) {
        try {
            ObjectNode n = Json.MAPPER.createObjectNode();
            n.put("op", op);
            if (why != null) {
                n.put("why", why);
            }
            link.sendFrame(Json.MAPPER.writeValueAsBytes(n));
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "hand-over: cannot answer {0}: {1}", op, e.getMessage());
        }
    }

    /** Stops listening and removes the socket file (an orderly shutdown, not a hand-over). */
    @Override
    public void close() {
        socket.close();
    }
}
