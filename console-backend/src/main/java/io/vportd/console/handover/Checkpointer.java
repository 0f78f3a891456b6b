package io.vportd.console.handover;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vportd.console.device.DeviceSnapshot;
import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.sys.MemFd;
import io.vportd.sys.NativeException;
import io.vportd.sys.SdNotify;
import io.vportd.telemetry.LogLimiter;
import io.vportd.telemetry.MetricSet;
import io.vportd.telemetry.SharedCounter;
import io.vportd.vhost.Session;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * Keeps systemd's file descriptor store ready for a crash ({@code --fd-store}): every descriptor a
 * restarted vportd needs to go on serving the same guest (the vhost-user listener and connection,
 * guest memory, kick and call eventfds, endpoint listeners, connected host clients, pty ends) is
 * in the store under a name of its own, and beside them a <em>checkpoint</em>: the hand-over's
 * state record ({@link HandoverState}) naming those descriptors, in a memfd of its own.
 *
 * <p>Two threads feed it without waiting: the vhost-user server after every message that may
 * change the session ({@link #sessionChanged}), the data plane after every cycle in which the
 * ports changed ({@link #deviceChanged}). Each hands over duplicates of the descriptors it names;
 * only the latest of each kind is kept. This class's own thread then brings the store in line:
 * <ol>
 *   <li>each descriptor is matched to one already stored (same open file, {@link Io#sameOpenFile});
 *       new ones are stored under a new name ({@code FDSTORE=1}, {@code FDPOLL=0});</li>
 *   <li>the checkpoint is written to a new memfd and stored as {@code vportd.state.<seq>};</li>
 *   <li>the previous checkpoint and every stored descriptor nobody names any more are removed
 *       ({@code FDSTOREREMOVE=1}): a host client vportd hung up on gets its EOF.</li>
 * </ol>
 * At every moment the store holds at least one complete checkpoint and every descriptor it names
 * (a recovering process takes the highest sequence number). This thread keeps a duplicate of
 * every stored descriptor, to compare with; all its work is on the control path, never per byte.
 */
public final class Checkpointer implements AutoCloseable {

    static final String STATE_PREFIX = "vportd.state.";
    static final String FORMAT = "vportd-checkpoint";
    static final int VERSION = 1;

    private static final System.Logger LOG = System.getLogger("vportd.recovery");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long RETRY_NANOS = 1_000_000_000L;

    /** The daemon-wide facts a checkpoint repeats (they never change while it runs). */
    public record Daemon(String socketPath, String apiSocket, String metricsListen, boolean allowUnsealedMemory) {
    }

    /** The vhost-user part: listener, connection (or null) and the session as replayable messages, all duplicates. */
    private record SessionPart(Fd listener, Fd connection, List<Session.Replay> replay) {
        void close() {
            listener.closeQuietly();
            if (connection != null) {
                connection.closeQuietly();
            }
            for (Session.Replay r : replay) {
                for (int fd : r.fds()) {
                    Io.close(fd);
                }
            }
        }
    }

    /** One descriptor in the store: its name, this process's duplicate of it, and its fstat id. */
    private record Stored(String name, Fd keep, Io.FileId id) {
    }

    private final SdNotify manager;
    private final Daemon daemon;
    private final long recoveries;
    private final AtomicReference<SessionPart> nextSession = new AtomicReference<>();
    private final AtomicReference<DeviceSnapshot> nextDevice = new AtomicReference<>();
    private final Thread thread;
    private volatile boolean closing;

    // ---- the checkpoint thread's own state
    private SessionPart session;
    private DeviceSnapshot device;
    private final Map<String, Stored> stored = new java.util.LinkedHashMap<>();
    /** The names the last checkpoint gave its descriptors, by index: where to look first. */
    private String[] lastNames = new String[0];
    private final java.util.concurrent.atomic.AtomicLong offered = new java.util.concurrent.atomic.AtomicLong();
    private volatile long settled;
    private String stateName;
    private long seq;
    private long names;
    private final String namePrefix = "vportd.f" + ProcessHandle.current().pid() + ".";
    private final LogLimiter failureLog = new LogLimiter(LOG);

    private final MetricSet metrics = new MetricSet();
    private final SharedCounter written = metrics.shared("vportd_checkpoints_total",
            "Crash-recovery checkpoints written to the service manager's descriptor store.");
    private final SharedCounter failures = metrics.shared("vportd_checkpoint_failures_total",
            "Crash-recovery checkpoints that could not be written (retried on the next change or after a second).");
    private final SharedCounter recovered = metrics.shared("vportd_crash_recoveries_total",
            "Times this device was recovered from the descriptor store after its vportd process ended (crash or restart).");

    /**
     * @param recoveries how many recoveries the checkpoint this process started from had counted
     *                   (0 on a fresh start); carried into every checkpoint this one writes
     */
    public Checkpointer(SdNotify manager, Daemon daemon, long recoveries) {
        this.manager = manager;
        this.daemon = daemon;
        this.recoveries = recoveries;
        recovered.addAndGet(recoveries);
        this.thread = Thread.ofPlatform().name("vportd-checkpoint").daemon(true).unstarted(this::run);
    }

    public MetricSet metrics() {
        return metrics;
    }

    /**
     * Descriptors a recovering process received from the store, by name (duplicates this object
     * owns from now on): matched like stored ones, so that they keep their names, and removed from
     * the store once nothing names them. Call before {@link #start}.
     */
    public void adoptStore(Map<String, Fd> byName) {
        byName.forEach((name, fd) -> {
            if (name.startsWith(STATE_PREFIX)) {
                fd.closeQuietly();
                removeQuietly(name); // the new process writes its own checkpoint
            } else {
                try {
                    stored.put(name, new Stored(name, fd, Io.fileId(fd.fd())));
                } catch (NativeException e) {
                    fd.closeQuietly();
                    removeQuietly(name);
                }
            }
        });
    }

    public Checkpointer start() {
        thread.start();
        return this;
    }

    /** A {@link io.vportd.vhost.VhostUserServer.SessionWatcher}: duplicates what it is told, on the server thread. */
    public void sessionChanged(int listenerFd, int connectionFd, List<Session.Replay> replay) {
        List<Fd> taken = new ArrayList<>();
        try {
            Fd listener = dup(listenerFd, taken);
            Fd connection = connectionFd < 0 ? null : dup(connectionFd, taken);
            List<Session.Replay> copies = new ArrayList<>(replay.size());
            for (Session.Replay r : replay) {
                int[] fds = new int[r.fds().length];
                for (int i = 0; i < fds.length; i++) {
                    fds[i] = dup(r.fds()[i], taken).fd();
                }
                copies.add(new Session.Replay(r.request(), r.payload(), fds));
            }
            offered.incrementAndGet();
            SessionPart old = nextSession.getAndSet(new SessionPart(listener, connection, copies));
            if (old != null) {
                old.close();
            }
            LockSupport.unpark(thread);
        } catch (NativeException e) {
            taken.forEach(Fd::closeQuietly);
            failures.incrementAndGet();
            failureLog.log(System.Logger.Level.ERROR, "checkpoint: cannot duplicate the session''s descriptors: {0}",
                    e.getMessage());
        }
    }

    /** Where the data plane hands its checkpoints ({@link io.vportd.console.device.DataPlane#checkpointTo}). */
    public void deviceChanged(DeviceSnapshot s) {
        offered.incrementAndGet();
        DeviceSnapshot old = nextDevice.getAndSet(s);
        if (old != null) {
            closeDevice(old);
        }
        LockSupport.unpark(thread);
    }

    private static Fd dup(int fd, List<Fd> taken) throws NativeException {
        Fd d = Io.dup(fd);
        taken.add(d);
        return d;
    }

    private static void closeDevice(DeviceSnapshot s) {
        s.ports().forEach(p -> p.endpoint().closeRest());
    }

    private void run() {
        boolean retry = false;
        while (!closing) {
            long seen = offered.get();
            SessionPart s = nextSession.getAndSet(null);
            DeviceSnapshot d = nextDevice.getAndSet(null);
            if (s != null) {
                if (session != null) {
                    session.close();
                }
                session = s;
            }
            if (d != null) {
                if (device != null) {
                    closeDevice(device);
                }
                device = d;
            }
            if ((s != null || d != null || retry) && session != null && device != null) {
                try {
                    write();
                    retry = false;
                    settled = seen;
                } catch (NativeException | RuntimeException e) {
                    retry = true;
                    failures.incrementAndGet();
                    failureLog.log(System.Logger.Level.ERROR, "checkpoint: cannot update the descriptor store: {0};"
                            + " a crash now would recover from the previous checkpoint", e.getMessage());
                }
            }
            if (!retry && (session == null || device == null)) {
                settled = seen; // nothing to write until both parts came
            }
            if (nextSession.get() == null && nextDevice.get() == null) {
                LockSupport.parkNanos(this, retry ? RETRY_NANOS : Long.MAX_VALUE);
            }
        }
    }

    /** Brings the store in line with the current session and device (see the class comment for the order). */
    private void write() throws NativeException {
        HandoverState.Encoded enc = HandoverState.encode(new HandoverState.Daemon(daemon.socketPath(), daemon.apiSocket(),
                daemon.metricsListen(), daemon.allowUnsealedMemory(), -1, session.listener().fd(),
                session.connection() == null ? -1 : session.connection().fd(), session.replay(), device, Map.of()));
        java.util.Set<String> named = new java.util.HashSet<>();
        String[] fdNames = new String[enc.fds().length];
        for (int i = 0; i < fdNames.length; i++) {
            Stored at = find(enc.fds()[i], i < lastNames.length ? lastNames[i] : null);
            if (at == null) {
                String name = namePrefix + ++names;
                Fd keep = Io.dup(enc.fds()[i]);
                try {
                    manager.storeFds(name, false, keep.fd());
                    at = new Stored(name, keep, Io.fileId(keep.fd()));
                } catch (NativeException | RuntimeException e) {
                    keep.closeQuietly();
                    throw e;
                }
                stored.put(name, at);
            }
            named.add(at.name());
            fdNames[i] = at.name();
        }
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.put("version", VERSION);
        root.put("seq", seq + 1);
        root.put("recoveries", recoveries);
        ArrayNode list = root.putArray("names");
        for (String n : fdNames) {
            list.add(n);
        }
        try {
            root.set("record", JSON.readTree(enc.json()));
        } catch (java.io.IOException e) {
            throw new IllegalStateException("cannot read back the state record", e);
        }
        byte[] bytes;
        try {
            bytes = JSON.writeValueAsBytes(root);
        } catch (java.io.IOException e) {
            throw new IllegalStateException("cannot write the checkpoint", e);
        }
        String name = STATE_PREFIX + (seq + 1);
        try (Fd memfd = MemFd.create("vportd-checkpoint")) {
            writeAll(memfd, bytes);
            manager.storeFds(name, false, memfd.fd());
        }
        seq++;
        if (stateName != null) {
            manager.removeFds(stateName);
        }
        stateName = name;
        for (java.util.Iterator<Stored> it = stored.values().iterator(); it.hasNext(); ) {
            Stored gone = it.next();
            if (!named.contains(gone.name())) {
                it.remove();
                removeQuietly(gone.name());
                gone.keep().closeQuietly();
            }
        }
        lastNames = fdNames;
        storedNames = java.util.Set.copyOf(stored.keySet());
        written.incrementAndGet();
    }

    /**
     * The stored descriptor for the same open file as {@code fd}, or null; {@code hint} (the name
     * the same index had last time) is tried first, so an unchanged checkpoint costs one
     * comparison per descriptor.
     */
    private Stored find(int fd, String hint) throws NativeException {
        Io.FileId id = Io.fileId(fd);
        Stored h = hint == null ? null : stored.get(hint);
        if (h != null && h.id().equals(id) && Io.sameOpenFile(h.keep().fd(), fd)) {
            return h;
        }
        for (Stored st : stored.values()) {
            if (st != h && st.id().equals(id) && Io.sameOpenFile(st.keep().fd(), fd)) {
                return st;
            }
        }
        return null;
    }

    private static void writeAll(Fd fd, byte[] bytes) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(Math.max(1, bytes.length));
            MemorySegment.copy(bytes, 0, buf, ValueLayout.JAVA_BYTE, 0, bytes.length);
            long done = 0;
            while (done < bytes.length) {
                long n = Io.write(fd.fd(), buf.address() + done, bytes.length - done);
                if (n < 0) {
                    throw new NativeException("write(checkpoint memfd)", (int) -n);
                }
                done += n;
            }
        }
    }

    private void removeQuietly(String name) {
        try {
            manager.removeFds(name);
        } catch (NativeException | RuntimeException e) {
            failureLog.log(System.Logger.Level.WARNING, "checkpoint: cannot remove {0} from the descriptor store: {1}",
                    name, e.getMessage());
        }
    }

    /** Stops the thread; the store keeps what it has (the next process recovers from it). */
    @Override
    public void close() {
        closing = true;
        LockSupport.unpark(thread);
        try {
            thread.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Waits until everything handed in so far is in the store (tests); false on timeout. */
    public boolean awaitIdle(long millis) {
        long target = offered.get();
        long deadline = System.nanoTime() + millis * 1_000_000L;
        while (settled < target) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            LockSupport.parkNanos(1_000_000L);
        }
        return true;
    }

    /** Names of the descriptors in the store after the last checkpoint, checkpoint excluded (tests). */
    java.util.Set<String> storedNames() {
        return storedNames;
    }

    private volatile java.util.Set<String> storedNames = java.util.Set.of();

    long checkpointsWritten() {
        return written.get();
    }
}
