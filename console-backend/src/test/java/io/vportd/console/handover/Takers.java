package io.vportd.console.handover;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vportd.sys.Fd;
import io.vportd.sys.UnixSockets;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;

/**
 * New processes that do not complete a hand-over of several devices, for tests outside this
 * package: one that receives the state and refuses it as a build that does not know the record's
 * version would, and one that dies once it has the state.
 */
public final class Takers {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration WAIT = Duration.ofSeconds(10);

    private Takers() {
    }

    /**
     * Receives the state from the daemon listening at {@code handoverSocket}, rewrites its version
     * to the next one (a record from a later build), reads it as this build's taker does and sends
     * back the refusal; returns that refusal.
     */
    public static String refuseALaterVersion(Path handoverSocket) throws IOException {
        try (HandoverLink link = new HandoverLink(UnixSockets.connect(handoverSocket))) {
            byte[] state = askForState(link);
            byte[] later = new String(state, StandardCharsets.UTF_8)
                    .replace("\"version\":" + HandoverState.DEVICES_VERSION, "\"version\":" + (HandoverState.DEVICES_VERSION + 1))
                    .getBytes(StandardCharsets.UTF_8);
            String why;
            try {
                HandoverState.parse(later, HandoverState.DEVICES_VERSION);
                throw new AssertionError("a record of version " + (HandoverState.DEVICES_VERSION + 1) + " was read");
            } catch (IOException e) {
                why = e.getMessage();
            }
            link.sendFrame(JSON.writeValueAsBytes(JSON.createObjectNode().put("op", "refused").put("why", why)));
            return why;
        }
    }

    /** Receives the state (record and every descriptor), then hangs up without a word, as if killed. */
    public static void dieAfterTheState(Path handoverSocket) throws IOException {
        try (HandoverLink link = new HandoverLink(UnixSockets.connect(handoverSocket))) {
            askForState(link);
        }
    }

    /** Asks for a hand-over in a version this build does not write; returns the daemon's answer. */
    public static String askForVersion(Path handoverSocket, int version) throws IOException {
        try (HandoverLink link = new HandoverLink(UnixSockets.connect(handoverSocket))) {
            ObjectNode req = JSON.createObjectNode().put("op", "take-over").put("version", version).put("pid", 1);
            link.sendFrame(JSON.writeValueAsBytes(req));
            return new String(link.receiveFrame(System.nanoTime() + WAIT.toNanos()), StandardCharsets.UTF_8);
        }
    }

    private static byte[] askForState(HandoverLink link) throws IOException {
        ObjectNode req = JSON.createObjectNode().put("op", "take-over").put("version", HandoverState.DEVICES_VERSION)
                .put("pid", 1);
        link.sendFrame(JSON.writeValueAsBytes(req));
        long deadline = System.nanoTime() + WAIT.toNanos();
        var header = JSON.readTree(link.receiveFrame(deadline));
        if (!"state".equals(header.path("op").asText())) {
            throw new IOException("refused: " + header);
        }
        byte[] state = link.receiveFrame(deadline);
        link.receiveFds(header.path("fdCount").asInt(), deadline).forEach(Fd::closeQuietly);
        return state;
    }
}
