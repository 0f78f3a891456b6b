package io.vportd.vhost;

import io.vportd.sys.Fd;
import io.vportd.vring.GuestMemory;
import io.vportd.vring.GuestRegion;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * One frontend connection's protocol state: validates each decoded message and drives the
 * {@link VhostUserBackend}. No socket I/O happens here: messages come in through
 * {@link #handle}, replies go out through a {@link ReplySink}, so tests and the fuzzer drive it
 * directly. Not thread-safe: one thread (the server's) owns a session.
 *
 * <p>Any message that fails validation ends the session: {@link #handle} throws
 * {@link VhostProtocolException} after sending a failure answer where the protocol has one.
 * Unknown requests are logged, answered with a failure ack when asked to, and skipped.
 *
 * <p>Over 500 lines: it is the one switch over every request and the ring and memory rules it
 * enforces, kept together so each rule sits next to the message it governs; the checks on what
 * the frontend hands over (descriptors, memory files) live in {@link Admission}.
 */
public final class Session implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(Session.class.getName());

    /** Memory slots offered through GET_MAX_MEM_SLOTS (translation scans regions linearly). */
    public static final int MAX_MEM_SLOTS = 32;
    /** Largest single region accepted (1 TiB). */
    public static final long MAX_REGION_SIZE = 1L << 40;

    /*
     * BACKEND_REQ is not offered: vportd never sends a backend-initiated request (no config
     * change notification, no IOTLB, no host notifiers), so the channel would be dead weight.
     */
    public static final long PROTOCOL_FEATURES_OFFERED = 1L << Codec.PROTOCOL_F_MQ
            | 1L << Codec.PROTOCOL_F_REPLY_ACK
            | 1L << Codec.PROTOCOL_F_CONFIG
            | 1L << Codec.PROTOCOL_F_RESET_DEVICE
            | 1L << Codec.PROTOCOL_F_CONFIGURE_MEM_SLOTS;

    /** Where replies go (the socket, or a test's buffer). */
    @FunctionalInterface
    public interface ReplySink {
        void send(byte[] message) throws IOException;
    }

    /** A received message: header, payload and the descriptors that came with it (owned). */
    public record Message(Codec.Header header, byte[] payload, Fd[] fds) {
    }

    private static final class Queue {
        final int index;
        int size;
        boolean addrSet;
        long descUser;
        long usedUser;
        long availUser;
        int base;
        Fd kick;
        Fd call;
        Boolean enabled; // null: never set by SET_VRING_ENABLE
        boolean started;

        Queue(int index) {
            this.index = index;
        }
    }

    private final VhostUserBackend backend;
    private final ReplySink sink;
    private final Queue[] queues;
    private final int configSize;
    private final long featuresOffered;
    private long ackedFeatures;
    private boolean featuresSet;
    private long ackedProtocol;
    private boolean protocolSet;
    private boolean owner;
    private List<MemoryTable.Mapping> mapped = new ArrayList<>();
    private boolean backendHasTable;
    private final boolean allowUnsealedMemory;
    private GuestMemory memory = GuestMemory.empty();
    private final VhostStats stats;
    private boolean closed;

    public Session(VhostUserBackend backend, ReplySink sink) {
        this(backend, sink, new VhostStats());
    }

    public Session(VhostUserBackend backend, ReplySink sink, VhostStats stats) {
        this(backend, sink, stats, false);
    }

    /**
     * @param allowUnsealedMemory accept memory files not sealed against shrinking (hugetlbfs
     *                            files cannot be sealed); a truncate by the frontend then faults
     *                            the device, which must end the session on such a fault
     */
    public Session(VhostUserBackend backend, ReplySink sink, VhostStats stats, boolean allowUnsealedMemory) {
        this.allowUnsealedMemory = allowUnsealedMemory;
        this.backend = backend;
        this.sink = sink;
        this.stats = stats;
        int n = backend.queueCount();
        if (n < 1 || n > 1024) {
            throw new IllegalArgumentException("backend queue count must be 1..1024: " + n);
        }
        int cs = backend.configSize();
        if (cs < 0 || cs > Codec.MAX_CONFIG_SIZE) {
            throw new IllegalArgumentException("backend config size must be 0.." + Codec.MAX_CONFIG_SIZE + ": " + cs);
        }
        this.configSize = cs;
        this.queues = new Queue[n];
        for (int i = 0; i < n; i++) {
            queues[i] = new Queue(i);
        }
        this.featuresOffered = backend.deviceFeatures() | 1L << Codec.F_PROTOCOL_FEATURES;
    }

    public GuestMemory memory() {
        return memory;
    }

    public VhostStats stats() {
        return stats;
    }

    private boolean replyAck() {
        return (ackedProtocol & 1L << Codec.PROTOCOL_F_REPLY_ACK) != 0;
    }

    private boolean protocolFeaturesNegotiated() {
        return protocolSet || (ackedFeatures & 1L << Codec.F_PROTOCOL_FEATURES) != 0;
    }

    private boolean hasProtocol(int bit) {
        return (ackedProtocol & 1L << bit) != 0;
    }

    /**
     * Handles one message; takes ownership of its descriptors (kept or closed, never leaked).
     *
     * @throws VhostProtocolException the message was not acceptable; the session must end
     * @throws IOException            a reply could not be sent
     */
    public void handle(Message m) throws IOException {
        Fd[] fds = m.fds();
        try {
            handleOwned(m, fds);
        } catch (VhostProtocolException e) {
            stats.rejectedMessages.incrementAndGet();
            throw e;
        } finally {
            for (int i = 0; i < fds.length; i++) {
                if (fds[i] != null) {
                    fds[i].closeQuietly();
                    fds[i] = null;
                }
            }
        }
    }

    private void handleOwned(Message m, Fd[] fds) throws IOException {
        Codec.Header h = m.header();
        Codec.validateHeader(h);
        if (h.size() != m.payload().length) {
            throw new VhostProtocolException(Request.describe(h.request()) + ": header says " + h.size()
                    + " payload bytes, message has " + m.payload().length);
        }
        Request r = Request.of(h.request());
        Codec.validateShape(r, h.request(), m.payload(), fds.length);
        if (r == null) {
            stats.unknownRequests.incrementAndGet();
            stats.log.log(System.Logger.Level.WARNING, "vhost-user: ignoring {0} with {1} payload bytes",
                    Request.describe(h.request()), m.payload().length);
            if (h.needReply()) {
                ack(h.request(), 1);
            }
            return;
        }
        try {
            boolean own = dispatch(r, m.payload(), fds);
            if (h.needReply() && replyAck() && !own) {
                ack(h.request(), 0);
            }
        } catch (VhostProtocolException e) {
            if (h.needReply() && replyAck() && !r.hasReply) {
                try {
                    ack(h.request(), 1);
                } catch (IOException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
    }

    private void ack(int request, long value) throws IOException {
        sink.send(Codec.reply(request, Codec.u64(value)));
    }

    private static Fd take(Fd[] fds, int i) {
        Fd f = fds[i];
        fds[i] = null;
        return f;
    }

    private Queue queue(Request r, int index) throws VhostProtocolException {
        if (index < 0 || index >= queues.length) {
            throw new VhostProtocolException(r + ": queue index " + Integer.toUnsignedString(index)
                    + " out of range (device has " + queues.length + " queues)");
        }
        return queues[index];
    }

    /** Returns true when the request produced a reply of its own. */
    private boolean dispatch(Request r, byte[] p, Fd[] fds) throws IOException {
        switch (r) {
            case GET_FEATURES -> sink.send(Codec.reply(r.code, Codec.u64(featuresOffered)));
            case SET_FEATURES -> {
                long acked = Codec.u64(p);
                if ((acked & ~featuresOffered) != 0) {
                    // Not fatal: a frontend's transport may add bits; the device never sees them.
                    stats.unofferedFeatureAcks.incrementAndGet();
                    stats.log.log(System.Logger.Level.WARNING, "vhost-user: {0} acknowledges features 0x{1} that were not offered; dropping them",
                            r, Long.toHexString(acked & ~featuresOffered));
                    acked &= featuresOffered;
                }
                ackedFeatures = acked;
                featuresSet = true;
                backend.setFeatures(acked & ~(1L << Codec.F_PROTOCOL_FEATURES));
            }
            case GET_PROTOCOL_FEATURES -> sink.send(Codec.reply(r.code, Codec.u64(PROTOCOL_FEATURES_OFFERED)));
            case SET_PROTOCOL_FEATURES -> {
                long acked = Codec.u64(p);
                if ((acked & ~PROTOCOL_FEATURES_OFFERED) != 0) {
                    throw new VhostProtocolException(r + ": acknowledges protocol features 0x"
                            + Long.toHexString(acked & ~PROTOCOL_FEATURES_OFFERED) + " that were not offered");
                }
                ackedProtocol = acked;
                protocolSet = true;
            }
            case SET_OWNER -> owner = true;
            case RESET_OWNER -> {
                stats.log.log(System.Logger.Level.INFO, "vhost-user: RESET_OWNER (deprecated): stopping all rings");
                for (Queue q : queues) {
                    stop(q);
                }
            }
            case GET_QUEUE_NUM -> sink.send(Codec.reply(r.code, Codec.u64(queues.length)));
            case GET_MAX_MEM_SLOTS -> sink.send(Codec.reply(r.code, Codec.u64(MAX_MEM_SLOTS)));
            case SET_BACKEND_REQ_FD -> requireProtocol(r, Codec.PROTOCOL_F_BACKEND_REQ); // never offered: refused
            case SET_MEM_TABLE -> setMemTable(r, Codec.memTable(p), fds);
            case ADD_MEM_REG -> {
                requireProtocol(r, Codec.PROTOCOL_F_CONFIGURE_MEM_SLOTS);
                addMemReg(r, Codec.singleRegion(p), fds);
            }
            case REM_MEM_REG -> {
                requireProtocol(r, Codec.PROTOCOL_F_CONFIGURE_MEM_SLOTS);
                remMemReg(r, Codec.singleRegion(p));
            }
            case SET_VRING_NUM -> {
                Codec.VringState s = Codec.vringState(p);
                Queue q = queue(r, s.index());
                int size = s.num();
                if (size < 1 || size > QueueSetup.MAX_SIZE || Integer.bitCount(size) != 1) {
                    throw new VhostProtocolException(r + ": queue " + q.index + " size " + Integer.toUnsignedString(size)
                            + " is not a power of two in 1.." + QueueSetup.MAX_SIZE);
                }
                boolean was = stop(q);
                q.size = size;
                if (q.addrSet) {
                    checkRing(r, q, q.descUser, q.availUser, q.usedUser);
                }
                if (was) {
                    maybeStart(r, q);
                }
            }
            case SET_VRING_ADDR -> {
                Codec.VringAddr a = Codec.vringAddr(p);
                Queue q = queue(r, a.index());
                checkRing(r, q, a.descUser(), a.availUser(), a.usedUser());
                boolean was = stop(q);
                q.descUser = a.descUser();
                q.usedUser = a.usedUser();
                q.availUser = a.availUser();
                q.addrSet = true;
                if (was) {
                    maybeStart(r, q);
                }
            }
            case SET_VRING_BASE -> {
                Codec.VringState s = Codec.vringState(p);
                Queue q = queue(r, s.index());
                if (Integer.compareUnsigned(s.num(), 0xffff) > 0) {
                    throw new VhostProtocolException(r + ": queue " + q.index + " base " + Integer.toUnsignedString(s.num())
                            + " does not fit a split ring's 16-bit index");
                }
                boolean was = stop(q);
                q.base = s.num();
                if (was) {
                    maybeStart(r, q);
                }
            }
            case GET_VRING_BASE -> {
                Codec.VringState s = Codec.vringState(p);
                Queue q = queue(r, s.index());
                stop(q);
                closeQueueFds(q, null);
                sink.send(Codec.reply(r.code, Codec.vringState(q.index, q.base)));
            }
            case SET_VRING_KICK -> {
                long v = Codec.u64(p);
                Queue q = queue(r, (int) (v & Codec.VRING_INDEX_MASK));
                boolean was = stop(q);
                Fd old = q.kick;
                if ((v & Codec.VRING_NOFD) != 0) {
                    // Polling mode is not supported: the ring waits for a real kick fd.
                    stats.log.log(System.Logger.Level.WARNING,
                            "vhost-user: {0} for queue {1} without a kick fd (polling) is not supported; the ring stays stopped",
                            r, q.index);
                    q.kick = null;
                } else {
                    q.kick = eventfd(r, q, take(fds, 0));
                }
                if (old != null) {
                    old.closeQuietly();
                }
                maybeStart(r, q);
                if (was && !q.started) {
                    LOG.log(System.Logger.Level.DEBUG, "vhost-user: queue {0} stays stopped after new kick fd", q.index);
                }
            }
            case SET_VRING_CALL -> {
                long v = Codec.u64(p);
                Queue q = queue(r, (int) (v & Codec.VRING_INDEX_MASK));
                boolean was = stop(q);
                Fd old = q.call;
                q.call = (v & Codec.VRING_NOFD) != 0 ? null : eventfd(r, q, take(fds, 0));
                if (old != null) {
                    old.closeQuietly();
                }
                if (was) {
                    maybeStart(r, q);
                }
            }
            case SET_VRING_ERR -> {
                long v = Codec.u64(p);
                Queue q = queue(r, (int) (v & Codec.VRING_INDEX_MASK));
                // vportd never stops a ring for a guest error (a bad chain is completed empty and
                // counted, the ring goes on), so it has nothing to signal: the descriptor is checked
                // like the others and closed at once instead of being kept unused.
                if ((v & Codec.VRING_NOFD) == 0) {
                    eventfd(r, q, take(fds, 0)).closeQuietly();
                }
            }
            case SET_VRING_ENABLE -> {
                Codec.VringState s = Codec.vringState(p);
                Queue q = queue(r, s.index());
                if (s.num() != 0 && s.num() != 1) {
                    throw new VhostProtocolException(r + ": queue " + q.index + " enable value "
                            + Integer.toUnsignedString(s.num()) + ", expected 0 or 1");
                }
                q.enabled = s.num() == 1;
                if (q.enabled) {
                    maybeStart(r, q);
                } else {
                    stop(q);
                }
            }
            case GET_CONFIG -> {
                Codec.Config c = Codec.config(p);
                if (!hasProtocol(Codec.PROTOCOL_F_CONFIG) || !configInRange(c)) {
                    sink.send(Codec.reply(r.code, new byte[0])); // empty payload = error, per the protocol
                    throw new VhostProtocolException(r + ": " + configProblem(c));
                }
                byte[] data = new byte[c.size()];
                backend.getConfig(c.offset(), data);
                sink.send(Codec.reply(r.code, Codec.config(c.offset(), c.flags(), data)));
            }
            case SET_CONFIG -> {
                Codec.Config c = Codec.config(p);
                if (!hasProtocol(Codec.PROTOCOL_F_CONFIG) || !configInRange(c)) {
                    throw new VhostProtocolException(r + ": " + configProblem(c));
                }
                if (c.flags() != 0 && c.flags() != 1) {
                    throw new VhostProtocolException(r + ": config flags " + Integer.toUnsignedString(c.flags()) + ", expected 0 or 1");
                }
                backend.setConfig(c.offset(), c.data());
            }
            case RESET_DEVICE -> {
                requireProtocol(r, Codec.PROTOCOL_F_RESET_DEVICE);
                resetDevice();
            }
        }
        return r.hasReply;
    }

    private void requireProtocol(Request r, int bit) throws VhostProtocolException {
        if (!hasProtocol(bit)) {
            throw new VhostProtocolException(r + ": protocol feature bit " + bit + " was not negotiated");
        }
    }

    private boolean configInRange(Codec.Config c) {
        long end = Integer.toUnsignedLong(c.offset()) + Integer.toUnsignedLong(c.size());
        return c.size() > 0 && end <= configSize;
    }

    private String configProblem(Codec.Config c) {
        if (!hasProtocol(Codec.PROTOCOL_F_CONFIG)) {
            return "protocol feature CONFIG was not negotiated";
        }
        return "config range offset " + Integer.toUnsignedString(c.offset()) + " size " + Integer.toUnsignedString(c.size())
                + " is outside the " + configSize + "-byte config space";
    }

    // ---- rings -----------------------------------------------------------------------------

    private Fd eventfd(Request r, Queue q, Fd fd) throws VhostProtocolException {
        return Admission.eventfd(r, q.index, fd, stats);
    }


    private void checkRing(Request r, Queue q, long desc, long avail, long used) throws VhostProtocolException {
        if ((desc & 15) != 0 || (avail & 1) != 0 || (used & 3) != 0) {
            throw new VhostProtocolException(String.format(
                    "%s: queue %d ring misaligned: desc 0x%x (needs 16), avail 0x%x (needs 2), used 0x%x (needs 4)",
                    r, q.index, desc, avail, used));
        }
        if (q.size > 0 && memory.regionCount() > 0) {
            translate(r, q, desc, avail, used, q.size);
        }
    }

    private MemorySegment[] translate(Request r, Queue q, long desc, long avail, long used, int size)
            throws VhostProtocolException {
        MemorySegment d = memory.sliceUser(desc, QueueSetup.descBytes(size));
        MemorySegment a = memory.sliceUser(avail, QueueSetup.availBytes(size));
        MemorySegment u = memory.sliceUser(used, QueueSetup.usedBytes(size));
        if (d == null || a == null || u == null) {
            throw new VhostProtocolException(String.format(
                    "%s: queue %d ring (size %d) is outside guest memory: desc 0x%x%s, avail 0x%x%s, used 0x%x%s",
                    r, q.index, size, desc, d == null ? " unmapped" : "", avail, a == null ? " unmapped" : "",
                    used, u == null ? " unmapped" : ""));
        }
        if ((d.address() & 15) != 0 || (a.address() & 1) != 0 || (u.address() & 3) != 0) {
            throw new VhostProtocolException(r + ": queue " + q.index + " ring misaligned in host memory");
        }
        return new MemorySegment[] {d, a, u};
    }

    private boolean enabled(Queue q) {
        return q.enabled != null ? q.enabled : !protocolFeaturesNegotiated();
    }

    private void maybeStart(Request r, Queue q) throws VhostProtocolException {
        if (q.started || q.size == 0 || !q.addrSet || q.kick == null || !enabled(q) || memory.regionCount() == 0) {
            return;
        }
        MemorySegment[] ring = translate(r, q, q.descUser, q.availUser, q.usedUser, q.size);
        if (basesFromUsedRings) {
            q.base = Short.toUnsignedInt(ring[2].get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2));
        }
        QueueSetup setup = new QueueSetup(q.index, q.size, ring[0], ring[1], ring[2], q.base,
                q.kick.fd(), q.call != null ? q.call.fd() : -1,
                (ackedFeatures & 1L << Codec.F_RING_EVENT_IDX) != 0, memory);
        backend.startQueue(q.index, setup);
        q.started = true;
    }

    /** Stops a started queue, keeping its base; returns whether it was running. */
    private boolean stop(Queue q) {
        if (!q.started) {
            return false;
        }
        q.started = false;
        q.base = backend.stopQueue(q.index) & 0xffff;
        return true;
    }

    private static IOException closeQueueFds(Queue q, IOException errors) {
        errors = closeInto(q.kick, errors);
        errors = closeInto(q.call, errors);
        q.kick = null;
        q.call = null;
        return errors;
    }

    private static IOException closeInto(Fd fd, IOException errors) {
        if (fd == null) {
            return errors;
        }
        try {
            fd.close();
        } catch (IOException e) {
            if (errors == null) {
                return e;
            }
            errors.addSuppressed(e);
        }
        return errors;
    }

    private void resetDevice() throws IOException {
        backend.reset();
        IOException errors = null;
        for (Queue q : queues) {
            q.started = false;
            errors = closeQueueFds(q, errors);
            q.size = 0;
            q.addrSet = false;
            q.base = 0;
            q.enabled = null;
        }
        ackedFeatures = 0;
        featuresSet = false;
        if (errors != null) {
            throw errors;
        }
    }

    // ---- memory ----------------------------------------------------------------------------

    private MemoryTable.Mapping map(Request r, Codec.MemRegion m, Fd fd) throws VhostProtocolException {
        return Admission.map(r, m, fd, allowUnsealedMemory, stats);
    }

    static boolean wraps(long start, long size) {
        return Admission.wraps(start, size);
    }


    private void setMemTable(Request r, List<Codec.MemRegion> regions, Fd[] fds) throws VhostProtocolException {
        List<MemoryTable.Mapping> fresh = new ArrayList<>();
        try {
            for (int i = 0; i < regions.size(); i++) {
                fresh.add(map(r, regions.get(i), fds[i]));
                fds[i] = null; // the mapping owns the file now
            }
            swapMemory(r, fresh);
        } finally {
            for (MemoryTable.Mapping x : fresh) {
                if (!mapped.contains(x)) {
                    x.release(); // the table was refused: these never became ours
                }
            }
        }
    }

    private void addMemReg(Request r, Codec.MemRegion m, Fd[] fds) throws VhostProtocolException {
        if (mapped.size() >= MAX_MEM_SLOTS) {
            throw new VhostProtocolException(r + ": all " + MAX_MEM_SLOTS + " memory slots are in use");
        }
        MemoryTable.Mapping added = map(r, m, fds[0]);
        fds[0] = null; // the mapping owns the file now
        List<MemoryTable.Mapping> next = new ArrayList<>(mapped);
        next.add(added);
        try {
            swapMemory(r, next);
        } finally {
            if (!mapped.contains(added)) {
                added.release();
            }
        }
    }

    private void remMemReg(Request r, Codec.MemRegion m) throws VhostProtocolException {
        List<MemoryTable.Mapping> next = new ArrayList<>(mapped);
        boolean removed = next.removeIf(x -> x.region.guestPhysAddr() == m.guestAddr()
                && x.region.size() == m.size() && x.region.userAddr() == m.userAddr());
        if (!removed) {
            throw new VhostProtocolException(String.format("%s: no region gpa 0x%x size 0x%x uaddr 0x%x is mapped",
                    r, m.guestAddr(), m.size(), m.userAddr()));
        }
        swapMemory(r, next);
    }

    /**
     * Installs {@code next} as the memory table. Running rings are stopped first, the backend
     * gets the new table (and closes its old one when it has switched), the session lets go of
     * mappings that left the table (unmapped once no table holds them), and every ring that can run
     * (re)starts with addresses translated through the new table. On a table error nothing changes and the
     * caller still owns the new mappings.
     */
    private void swapMemory(Request r, List<MemoryTable.Mapping> next) throws VhostProtocolException {
        GuestMemory table;
        try {
            List<GuestRegion> list = new ArrayList<>(next.size());
            next.forEach(x -> list.add(x.region));
            table = GuestMemory.of(list);
        } catch (IllegalArgumentException e) {
            throw new VhostProtocolException(r + ": " + e.getMessage(), e);
        }
        List<Queue> running = new ArrayList<>();
        for (Queue q : queues) {
            if (stop(q)) {
                running.add(q);
            }
        }
        List<MemoryTable.Mapping> old = mapped;
        backendHasTable = true;
        backend.setMemory(MemoryTable.holding(table, next));
        memory = table;
        mapped = next;
        for (MemoryTable.Mapping x : old) {
            if (!next.contains(x)) {
                x.release();
            }
        }
        // Every ring that can run now does: those stopped above, and any configured ring that
        // was only waiting for memory.
        for (Queue q : queues) {
            maybeStart(r, q);
        }
        if (!running.isEmpty() && table.regionCount() == 0) {
            stats.log.log(System.Logger.Level.WARNING, "vhost-user: {0} removed all guest memory; {1} ring(s) stay stopped",
                    r, running.size());
        }
    }

    /**
     * Ends the session: resets the backend, withdraws guest memory (the backend closes the table
     * it had), then closes queue descriptors and lets go of the session's own hold on the
     * mappings, in that order, collecting errors. The socket is the caller's.
     */
    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        IOException errors = null;
        try {
            backend.reset();
        } catch (RuntimeException e) {
            errors = new IOException("backend reset failed", e);
        }
        for (Queue q : queues) {
            q.started = false;
        }
        if (backendHasTable) {
            try {
                backend.setMemory(MemoryTable.empty());
            } catch (RuntimeException e) {
                errors = add(errors, new IOException("backend setMemory(empty) failed", e));
            }
            memory = GuestMemory.empty();
        }
        for (Queue q : queues) {
            errors = closeQueueFds(q, errors);
        }
        for (MemoryTable.Mapping x : mapped) {
            try {
                x.release();
            } catch (RuntimeException e) {
                errors = add(errors, new IOException("unmapping " + x.region + " failed", e));
            }
        }
        mapped = new ArrayList<>();
        if (errors != null) {
            throw errors;
        }
    }

    private static IOException add(IOException errors, IOException e) {
        if (errors == null) {
            return e;
        }
        errors.addSuppressed(e);
        return errors;
    }

    // ---- live hand-over -------------------------------------------------------------------

    /**
     * One message that rebuilds part of this session in another process. The descriptors are this
     * session's (still owned by it); the hand-over passes them on with SCM_RIGHTS.
     */
    public record Replay(int request, byte[] payload, int[] fds) {
    }

    /** Rings stopped by {@link #suspendForHandover}, started again by {@link #resumeAfterHandover}. */
    private List<Queue> suspended = List.of();

    /**
     * Stops every running ring (the device hands held chains back and keeps what the host already
     * took of them) and describes the whole session as the messages a frontend would send to build
     * it again: protocol features, owner, features, the memory table, and per ring its size, base
     * (the stopped ring's next available index), addresses, call, enable and kick. Fed to a fresh
     * {@link Session} in the next process, they start the same rings at the same places.
     */
    public List<Replay> suspendForHandover() {
        List<Queue> stopped = new ArrayList<>();
        for (Queue q : queues) {
            if (q.started) {
                stopped.add(q);
            }
        }
        int[] indexes = stopped.stream().mapToInt(q -> q.index).toArray();
        int[] next = backend.stopQueues(indexes); // one hand-off for all rings, not one each
        for (int i = 0; i < indexes.length; i++) {
            Queue q = stopped.get(i);
            q.started = false;
            q.base = next[i] & 0xffff;
        }
        suspended = stopped;
        return replay();
    }

    /**
     * Describes the session as {@link #suspendForHandover} does, but without stopping anything: for
     * the crash-recovery checkpoint, taken after every message that changes the session. A running
     * ring's base in it is stale; a process recovering from it takes each ring's position from its
     * used ring instead ({@link #recoverRingBases}).
     */
    public List<Replay> describe() {
        return replay();
    }

    /**
     * From now until {@link #endRingRecovery}, a ring that starts takes its next available index
     * from the index of its used ring in guest memory, not from SET_VRING_BASE: the crashed process
     * completed every chain up to there (vportd completes each ring's chains in order) and nothing
     * after it.
     */
    void recoverRingBases() {
        basesFromUsedRings = true;
    }

    /** Ends {@link #recoverRingBases}: later starts use SET_VRING_BASE again. */
    void endRingRecovery() {
        basesFromUsedRings = false;
    }

    private boolean basesFromUsedRings;

    private List<Replay> replay() {
        List<Replay> out = new ArrayList<>();
        if (protocolSet) {
            out.add(new Replay(Request.SET_PROTOCOL_FEATURES.code, Codec.u64(ackedProtocol), new int[0]));
        }
        if (owner) {
            out.add(new Replay(Request.SET_OWNER.code, new byte[0], new int[0]));
        }
        if (featuresSet) {
            out.add(new Replay(Request.SET_FEATURES.code, Codec.u64(ackedFeatures), new int[0]));
        }
        if (!mapped.isEmpty()) {
            if (mapped.size() <= Codec.MAX_MEM_TABLE_REGIONS) {
                List<Codec.MemRegion> regions = new ArrayList<>();
                int[] files = new int[mapped.size()];
                for (int i = 0; i < mapped.size(); i++) {
                    regions.add(mapped.get(i).source);
                    files[i] = mapped.get(i).file.fd();
                }
                out.add(new Replay(Request.SET_MEM_TABLE.code, Codec.memTable(regions), files));
            } else {
                for (MemoryTable.Mapping m : mapped) { // only reachable with CONFIGURE_MEM_SLOTS
                    out.add(new Replay(Request.ADD_MEM_REG.code, Codec.singleRegion(m.source), new int[] {m.file.fd()}));
                }
            }
        }
        for (Queue q : queues) {
            if (q.size == 0 && !q.addrSet && q.kick == null && q.call == null && q.enabled == null && q.base == 0) {
                continue;
            }
            if (q.size != 0) {
                out.add(new Replay(Request.SET_VRING_NUM.code, Codec.vringState(q.index, q.size), new int[0]));
            }
            out.add(new Replay(Request.SET_VRING_BASE.code, Codec.vringState(q.index, q.base), new int[0]));
            if (q.addrSet) {
                out.add(new Replay(Request.SET_VRING_ADDR.code,
                        Codec.vringAddr(new Codec.VringAddr(q.index, 0, q.descUser, q.usedUser, q.availUser, 0)), new int[0]));
            }
            if (q.call != null) {
                out.add(new Replay(Request.SET_VRING_CALL.code, Codec.u64(q.index), new int[] {q.call.fd()}));
            }
            if (q.enabled != null) {
                out.add(new Replay(Request.SET_VRING_ENABLE.code, Codec.vringState(q.index, q.enabled ? 1 : 0), new int[0]));
            }
            if (q.kick != null) {
                out.add(new Replay(Request.SET_VRING_KICK.code, Codec.u64(q.index), new int[] {q.kick.fd()}));
            }
        }
        return out;
    }

    /** The hand-over did not happen: every ring {@link #suspendForHandover} stopped runs again where it was. */
    public void resumeAfterHandover() throws VhostProtocolException {
        List<Queue> again = suspended;
        suspended = List.of();
        for (Queue q : again) {
            maybeStart(Request.SET_VRING_KICK, q);
        }
    }

    /** True once the frontend sent SET_OWNER. */
    public boolean hasOwner() {
        return owner;
    }

    /** True once the frontend sent SET_FEATURES. */
    public boolean featuresSet() {
        return featuresSet;
    }
}
