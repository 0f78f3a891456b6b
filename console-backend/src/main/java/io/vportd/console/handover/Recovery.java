package io.vportd.console.handover;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vportd.console.device.ConsoleDevice;
import io.vportd.console.device.PortLogContext;
import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.sys.ListenFds;
import io.vportd.sys.MemFd;
import io.vportd.vhost.VhostUserServer;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Starting again after a crash ({@code --fd-store}): the service manager passed back what the
 * previous process stored ({@link Checkpointer}); the newest checkpoint says which descriptor is
 * which. The device is rebuilt as in a live hand-over (same record, same code), with three
 * differences: rings start where their used rings say (the checkpoint's bases are stale), nothing
 * in flight comes back (carried chains, console backlogs, replay rings, counters), and endpoints a
 * crash cannot keep (file, stdio) are opened afresh.
 */
public final class Recovery {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_CHECKPOINT = 64L << 20;

    /**
     * A device rebuilt from the store, frozen until {@link io.vportd.console.device.DataPlane#thawAfterCrash}.
     *
     * @param store      duplicates of every descriptor received, by name, for {@link Checkpointer#adoptStore}
     * @param recoveries recoveries counted so far, this one included
     */
    public record Recovered(ConsoleDevice device, VhostUserServer vhost, Path apiSocket, String metricsListen,
                            boolean allowUnsealedMemory, int portCount, Map<String, Fd> store, long recoveries) {
    }

    private Recovery() {
    }

    /**
     * Rebuilds the daemon from {@code passed}, or returns null when it holds no checkpoint (then
     * every passed descriptor is in the returned-null case left in {@code passed} for the caller).
     *
     * @throws IOException the checkpoint is unreadable, names descriptors the store lacks, is for
     *                     another socket, or the device cannot be rebuilt (the message says which)
     */
    public static Recovered from(ListenFds passed, Path socketPath, PortLogContext logContext) throws IOException {
        String newest = null;
        long newestSeq = -1;
        for (String n : passed.names()) {
            if (n.startsWith(Checkpointer.STATE_PREFIX)) {
                long seq = parseSeq(n);
                if (seq > newestSeq) {
                    newestSeq = seq;
                    newest = n;
                }
            }
        }
        if (newest == null) {
            return null;
        }
        Map<String, Fd> byName = takeAll(passed);
        Map<String, Fd> store = new LinkedHashMap<>();
        Set<Integer> handedToDevice = new HashSet<>();
        long t0 = System.nanoTime();
        try {
            JsonNode root = JSON.readTree(readAll(byName.get(newest)));
            if (root == null || !Checkpointer.FORMAT.equals(root.path("format").asText())
                    || root.path("version").asInt(-1) != Checkpointer.VERSION) {
                throw new IOException("the checkpoint " + newest + " is not a version " + Checkpointer.VERSION
                        + " vportd checkpoint");
            }
            for (Map.Entry<String, Fd> e : byName.entrySet()) {
                store.put(e.getKey(), Io.dup(e.getValue().fd()));
            }
            JsonNode names = root.required("names");
            int[] fds = new int[names.size()];
            for (int i = 0; i < fds.length; i++) {
                String n = names.get(i).asText();
                Fd f = byName.get(n);
                if (f == null || n.startsWith(Checkpointer.STATE_PREFIX)) {
                    throw new IOException("the checkpoint names descriptor " + n + ", which the store did not pass back");
                }
                fds[i] = handedToDevice.add(f.fd()) ? f.fd() : Io.dup(f.fd()).release();
            }
            JsonNode record = HandoverState.parse(JSON.writeValueAsBytes(root.required("record")));
            HandoverState.Daemon d = HandoverState.decode(record, fds);
            if (!Path.of(d.socketPath()).equals(socketPath)) {
                throw new IOException("the checkpoint is for " + d.socketPath() + ", not " + socketPath);
            }
            for (Fd f : byName.values()) {
                if (!handedToDevice.contains(f.fd())) {
                    f.closeQuietly(); // the store's copy stays until the first checkpoint drops it
                }
            }
            byName.clear();
            long read = System.nanoTime();
            ConsoleDevice device = new ConsoleDevice(d.device(), ConsoleDevice::recoverEndpoint, logContext);
            long built = System.nanoTime();
            VhostUserServer vhost;
            try {
                vhost = DeferredStarts.replayInto(device, socketPath, d, true);
            } catch (IOException | RuntimeException e) {
                device.close();
                throw e;
            }
            System.getLogger("vportd.recovery").log(System.Logger.Level.INFO,
                    "recovery: checkpoint {0} read in {1} ms, device rebuilt in {2} ms, session replayed in {3} ms",
                    newest, HandoverServer.ms(read - t0), HandoverServer.ms(built - read),
                    HandoverServer.ms(System.nanoTime() - built));
            return new Recovered(device, vhost, d.apiSocket() == null ? null : Path.of(d.apiSocket()), d.metricsListen(),
                    d.allowUnsealedMemory(), d.device().ports().size(), store, root.path("recoveries").asLong(0) + 1);
        } catch (IOException | RuntimeException e) {
            byName.values().forEach(Fd::closeQuietly);
            store.values().forEach(Fd::closeQuietly);
            if (e instanceof IllegalArgumentException || e instanceof NullPointerException) {
                throw new IOException("the checkpoint is malformed: " + e.getMessage(), e);
            }
            throw e;
        }
    }

    /**
     * Every descriptor {@code passed} holds, by name, now owned by the caller. vportd stores one
     * descriptor per name: a second one under the same name is not its own and is closed.
     */
    public static Map<String, Fd> takeAll(ListenFds passed) {
        Map<String, Fd> byName = new LinkedHashMap<>();
        for (String n : List.copyOf(passed.names())) {
            List<Fd> fds = passed.take(n);
            byName.put(n, fds.get(0));
            for (int i = 1; i < fds.size(); i++) {
                fds.get(i).closeQuietly();
            }
        }
        return byName;
    }

    /**
     * Asks the service manager to drop every descriptor stored under {@code names} (after a failed
     * recovery: the next start is a fresh one). Failures are logged; the manager drops the store
     * anyway when the unit stops for good.
     */
    public static void emptyStore(io.vportd.sys.SdNotify manager, Set<String> names) {
        for (String n : names) {
            try {
                manager.removeFds(n);
            } catch (IOException | RuntimeException e) {
                System.getLogger("vportd.recovery").log(System.Logger.Level.WARNING,
                        "cannot remove {0} from the descriptor store: {1}", n, e.getMessage());
            }
        }
    }

    private static long parseSeq(String name) {
        try {
            return Long.parseLong(name.substring(Checkpointer.STATE_PREFIX.length()));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static byte[] readAll(Fd memfd) throws IOException {
        long size = MemFd.size(memfd.fd());
        if (size <= 0 || size > MAX_CHECKPOINT) {
            throw new IOException("the checkpoint file holds " + size + " bytes");
        }
        // mapped, not read: the descriptor shares its file offset with the writer's, which is at the end
        try (Arena arena = Arena.ofConfined()) {
            return MemFd.mapShared(memfd.fd(), 0, size, arena).toArray(ValueLayout.JAVA_BYTE);
        }
    }
}
