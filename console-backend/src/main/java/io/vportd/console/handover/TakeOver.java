package io.vportd.console.handover;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.UnixSockets;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The new process's side of a live hand-over ({@code vportd --take-over}): connects to the running
 * daemon's hand-over socket, receives the state record and the descriptors, and, once everything
 * is rebuilt (but nothing touched yet), says {@link #ready} and waits for the running daemon's
 * {@code go}. Until {@code go} arrives the running daemon still owns the device: on any failure
 * this side must {@link #refuse} (or simply exit) without closing anything shared with it in a
 * way that shows (no socket file removed, no ring touched).
 */
public final class TakeOver implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();
    static final Duration STATE_TIMEOUT = Duration.ofSeconds(30);
    static final Duration GO_TIMEOUT = Duration.ofSeconds(10);
    /** Most descriptors a hand-over may carry (1024 devices of a few dozen rings and ports fit). */
    static final int MAX_FDS = 1 << 18;

    private final HandoverLink link;
    private List<Fd> received = List.of();
    private long ringsStoppedAtNanos;

    TakeOver(HandoverLink link) {
        this.link = link;
    }

    /**
     * Runs the taking side once on a throw-away device (see {@link Rehearsal}); call before
     * {@link #connect} so that the running daemon's pause does not include this JVM warming up.
     */
    public static void rehearse() {
        Rehearsal.run();
    }

    /**
     * As {@link #rehearse}, for a hand-over of several devices ({@code --take-over --config}):
     * every rehearsed device is built by {@code builder}, the one the real devices will be built
     * by, so the pause does not include building on the event loops for the first time either.
     */
    public static void rehearseDevices(RestoredDevices.Builder builder) {
        Rehearsal.runDevices(builder);
    }

    /**
     * Fails at once, naming what was looked for, when no daemon's hand-over socket exists for
     * {@code socketPath}.
     */
    public static void checkServed(Path socketPath) throws IOException {
        Path p = HandoverServer.pathFor(socketPath);
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException("no vportd serves " + socketPath + " (its hand-over socket " + p + " does not exist; "
                    + "a device of a --config daemon goes with the whole daemon: --take-over --config FILE)");
        }
    }

    /**
     * Connects to the daemon serving {@code socketPath}.
     *
     * @throws IOException nobody serves it (the message says what was looked for)
     */
    public static TakeOver connect(Path socketPath) throws IOException {
        checkServed(socketPath);
        Path p = HandoverServer.pathFor(socketPath);
        try {
            return new TakeOver(new HandoverLink(UnixSockets.connect(p)));
        } catch (NativeException e) {
            throw new IOException("no vportd serves " + socketPath + " (cannot connect to " + p + ": " + e.getMessage() + ")", e);
        }
    }

    /**
     * Fails at once, naming what was looked for, when nothing listens at the hand-over socket
     * {@code handoverSocket} of a daemon of several devices.
     */
    public static void checkListening(Path handoverSocket) throws IOException {
        if (!Files.exists(handoverSocket, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException("no vportd serves this configuration (its hand-over socket " + handoverSocket
                    + " does not exist)");
        }
    }

    /** Connects to the daemon of several devices listening at {@code handoverSocket}. */
    public static TakeOver connectTo(Path handoverSocket) throws IOException {
        checkListening(handoverSocket);
        try {
            return new TakeOver(new HandoverLink(UnixSockets.connect(handoverSocket)));
        } catch (NativeException e) {
            throw new IOException("no vportd serves this configuration (cannot connect to " + handoverSocket + ": "
                    + e.getMessage() + ")", e);
        }
    }

    /**
     * Asks for the hand-over and receives the running daemon's state. The running daemon is frozen
     * from here on until {@link #ready} or the end of this connection.
     *
     * @throws IOException the daemon refused (the message says why), the record is of a version
     *                     this build cannot read (the daemon is told and resumes), or the
     *                     connection failed
     */
    public HandoverState.Daemon receive() throws IOException {
        return receive(HandoverState.VERSION, HandoverState::decode);
    }

    /**
     * As {@link #receive}, from a daemon of several devices ({@code --config}): every device's
     * state in one record of version {@link HandoverState#DEVICES_VERSION}.
     */
    HandoverState.Daemons receiveDevices() throws IOException {
        return receive(HandoverState.DEVICES_VERSION, HandoverState::decodeDevices);
    }

    /** How a record of one version is read back. */
    @FunctionalInterface
    private interface Decoder<T> {
        T decode(JsonNode root, int[] fds) throws IOException;
    }

    private <T> T receive(int version, Decoder<T> decoder) throws IOException {
        ObjectNode req = JSON.createObjectNode();
        req.put("op", "take-over");
        req.put("version", version);
        req.put("pid", ProcessHandle.current().pid());
        link.sendFrame(JSON.writeValueAsBytes(req));
        long deadline = System.nanoTime() + STATE_TIMEOUT.toNanos();
        JsonNode header = JSON.readTree(link.receiveFrame(deadline));
        if (!"state".equals(header.path("op").asText())) {
            throw new IOException("the running vportd refused the hand-over: " + header.path("why").asText("no reason given"));
        }
        int count = header.path("fdCount").asInt(-1);
        ringsStoppedAtNanos = header.path("ringsStoppedAtNanos").asLong(0);
        byte[] json = link.receiveFrame(deadline);
        if (count < 0 || count > MAX_FDS) {
            refuse("the running vportd announced " + count + " descriptors (at most " + MAX_FDS + ")");
            throw new IOException("the running vportd announced " + count + " descriptors");
        }
        received = link.receiveFds(count, deadline);
        JsonNode root;
        try {
            root = HandoverState.parse(json, version);
        } catch (IOException e) {
            refuse(e.getMessage());
            throw e;
        }
        int[] fds = received.stream().mapToInt(Fd::fd).toArray();
        try {
            return decoder.decode(root, fds);
        } catch (IOException e) {
            refuse(e.getMessage());
            throw e;
        }
    }

    /** Tells the running daemon this process cannot take over; it resumes serving. */
    public void refuse(String why) {
        try {
            ObjectNode n = JSON.createObjectNode();
            n.put("op", "refused");
            n.put("why", why);
            link.sendFrame(JSON.writeValueAsBytes(n));
        } catch (IOException e) {
            // It resumes on the connection's end as well.
        }
    }

    /**
     * Everything is rebuilt: asks the running daemon to let go and waits for its {@code go}. After
     * a true return this process owns the device; the caller thaws the data plane.
     *
     * @throws IOException no {@code go} came (the running daemon resumes or is gone; this process
     *                     must exit without serving)
     */
    public void ready() throws IOException {
        ObjectNode n = JSON.createObjectNode();
        n.put("op", "ready");
        link.sendFrame(JSON.writeValueAsBytes(n));
        JsonNode go = JSON.readTree(link.receiveFrame(System.nanoTime() + GO_TIMEOUT.toNanos()));
        if (!"go".equals(go.path("op").asText())) {
            throw new IOException("the running vportd did not let go: " + go);
        }
    }

    /**
     * When the running daemon began to stop its rings ({@link System#nanoTime}, the same clock in
     * both processes), as it said with the state; 0 when it did not say.
     */
    long ringsStoppedAtNanos() {
        return ringsStoppedAtNanos;
    }

    /** The descriptors received, in record index order (the caller adopted the ones it used). */
    List<Fd> received() {
        return received;
    }

    @Override
    public void close() {
        link.close();
    }
}
