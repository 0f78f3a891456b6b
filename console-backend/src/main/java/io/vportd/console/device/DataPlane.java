package io.vportd.console.device;

import io.vportd.console.control.ControlMachine;
import io.vportd.console.control.ControlStats;
import io.vportd.console.control.PortConfig;
import io.vportd.console.endpoint.Endpoint;
import io.vportd.console.endpoint.EndpointHost;
import io.vportd.console.portlog.LogFollower;
import io.vportd.console.portlog.LogWriter;
import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.Epoll;
import io.vportd.sys.EventFd;
import io.vportd.telemetry.LogLimiter;
import io.vportd.telemetry.MetricRegistry;
import io.vportd.vhost.MemoryTable;
import io.vportd.vhost.QueueSetup;
import io.vportd.vhost.VhostUserBackend;
import io.vportd.vring.GuestMemory;
import io.vportd.vring.QueueStats;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Function;
import java.util.function.Supplier;
import org.jctools.queues.atomic.MpscAtomicArrayQueue;

/**
 * The console device's data plane: one thread that owns every virtqueue, every endpoint and the
 * control state machine, and waits on one epoll set (kick eventfds, endpoint descriptors and its
 * own wake-up eventfd). Other threads (the vhost-user session, management) hand it work only
 * through a bounded lock-free command queue and wait for the answer ({@link #call}).
 *
 * <p>This class is the loop and the public face; the work is done by
 * {@link QueueTable} (virtqueues, memory table, publishing completions),
 * {@link PortPump} (the hot transmit/receive paths), {@link ControlQueues} (control virtqueues
 * and the {@link ControlMachine}) and {@link PortManagement} (the port table: add, remove,
 * drain, snapshot, events). A {@link DirtySet} names the ports (and the control queues) with
 * work waiting, so a wake visits only those.
 *
 * <p>Size: about 600 lines, because it is also the device's public face: every call another
 * thread makes (rings, memory, ports, listings) is a short method that hands work to the loop
 * here, so the thread-confinement rule is visible in one file (the adaptive poll's decision is
 * in {@link PollWindow}; only its few lines of loop are here).
 */
public final class DataPlane implements EndpointHost, AutoCloseable {

    private static final System.Logger LOG = System.getLogger("vportd.device");

    private static final int MAX_EVENTS = 64;
    private static final int COMMAND_CAPACITY = 1024;
    private static final long COMMAND_TIMEOUT_SECONDS = 20;
    private static final int MAX_CONSECUTIVE_FAILURES = 100;

    static final long KIND_WAKE = 1;
    static final long KIND_KICK = 2;
    static final long KIND_ENDPOINT = 3;

    private final QueueMap map;
    private final ControlMachine control;
    private final PortRuntime[] ports;
    /** Ports (by id) with work waiting, and bit {@code ports.length} for the control queues. */
    private final DirtySet work;
    private final int controlBit;
    private final QueueTable queues;
    private final ControlQueues controlQueues;
    private final PortPump pump;
    private final PortManagement management;
    private final Fd epoll;
    private final Fd wake;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment events;
    private final MpscAtomicArrayQueue<Command<?>> commands = new MpscAtomicArrayQueue<>(COMMAND_CAPACITY);
    private final DeviceCounters deviceCounters = new DeviceCounters();
    /** Every counter of this device (queues, control, device-wide; the daemon adds its own); ports are walked live. */
    private final MetricRegistry metrics = new MetricRegistry();
    /** The thread that runs this data plane: its own, or its {@link EventLoop}'s once started on one. */
    private volatile Thread thread;
    /** The loop this data plane runs on, or null: a thread of its own. */
    private EventLoop loop;
    /** How log lines of this data plane's turns on a loop name it (the device id); null with a thread of its own. */
    private String tag;
    /** Set once the loop has let go of this data plane (it ran its last turn). */
    private final java.util.concurrent.CountDownLatch detached = new java.util.concurrent.CountDownLatch(1);
    private volatile boolean started;
    private volatile boolean ended;
    private volatile boolean running = true;
    private int consecutiveFailures;
    /**
     * Frozen for a live hand-over: the loop runs commands only, touching no ring, endpoint or
     * guest memory, until {@link #thaw}. Data-plane thread only (set through commands).
     */
    private boolean frozen;
    /** The epoll set the loop waits on while frozen: the wake-up eventfd alone. */
    private final Fd frozenEpoll;
    /** Adaptive poll after small messages (--poll-us); set through {@link #setPollMicros}, data-plane thread only. */
    private final PollWindow pollWindow = new PollWindow();

    public DataPlane(QueueMap map, List<PortConfig> configs, Function<PortConfig, Endpoint> endpoints)
            throws IOException {
        this(map, configs, endpoints, PortLogContext.DEFAULT);
    }

    public DataPlane(QueueMap map, List<PortConfig> configs, Function<PortConfig, Endpoint> endpoints,
                     PortLogContext logContext) throws IOException {
        this.map = map;
        this.ports = new PortRuntime[map.maxPorts()];
        this.controlBit = ports.length;
        this.work = new DirtySet(ports.length + 1);
        this.management = new PortManagement(map, ports, work, deviceCounters, endpoints, logContext);
        this.control = new ControlMachine(map.maxPorts(), management);
        this.controlQueues = new ControlQueues(control, deviceCounters);
        this.epoll = Epoll.create();
        this.wake = EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC);
        this.queues = new QueueTable(map, epoll.fd(), ports, work, controlQueues, deviceCounters);
        this.controlQueues.bind(queues, work, controlBit);
        for (int i = 0; i < queues.count(); i++) {
            int port = map.portOf(i);
            metrics.register(queues.stats(i).metrics(), "queue", Integer.toString(i),
                    "port", port == QueueMap.CONTROL ? "control" : Integer.toString(port),
                    "direction", QueueMap.isDeviceWrites(i) ? "rx" : "tx");
        }
        metrics.register(control.stats().metrics());
        metrics.register(deviceCounters.metrics());
        this.pump = new PortPump(map, control, queues, work, management::hostDisconnected);
        this.management.bind(control, queues, pump, controlQueues, this);
        this.management.exportEndpointCounters(metrics);
        this.events = arena.allocate((long) Epoll.EPOLL_EVENT_SIZE * MAX_EVENTS, 8);
        int r = Epoll.ctl(epoll.fd(), Epoll.EPOLL_CTL_ADD, wake.fd(), Epoll.EPOLLIN, token(KIND_WAKE, 0, 0));
        if (r < 0) {
            throw new NativeException("epoll_ctl(ADD wake eventfd)", -r);
        }
        this.frozenEpoll = Epoll.create();
        r = Epoll.ctl(frozenEpoll.fd(), Epoll.EPOLL_CTL_ADD, wake.fd(), Epoll.EPOLLIN, token(KIND_WAKE, 0, 0));
        if (r < 0) {
            throw new NativeException("epoll_ctl(ADD wake eventfd, frozen set)", -r);
        }
        for (PortConfig c : configs) {
            management.install(c);
        }
        this.thread = new Thread(this::run, "vportd-dataplane");
        this.thread.setDaemon(true);
    }

    public void start() {
        started = true;
        if (loop != null) {
            thread = loop.thread(); // before anyone can call(): commands from the loop's thread run inline
            loop.attach(this);
        } else {
            thread.start();
        }
    }

    /**
     * Before {@link #start}: run on {@code loop} (shared with other devices) instead of a thread of
     * its own; {@code tag} names the device in log lines of its turns.
     */
    public void runOn(EventLoop loop, String tag) {
        if (started) {
            throw new IllegalStateException("runOn before start");
        }
        this.loop = loop;
        this.tag = tag;
    }

    String tag() {
        return tag;
    }

    /**
     * The epoll set a loop should watch for this data plane now: its own, or while frozen the set
     * of its wake-up eventfd alone (loop thread, or before the loop has it).
     */
    int epollFd() {
        return frozen ? frozenEpoll.fd() : epoll.fd();
    }

    /** How long, at most, the loop may leave this data plane without a turn. */
    int nextWaitMillis() {
        return frozen ? 1000 : waitMillis();
    }

    /**
     * One turn on the loop's thread, without waiting; false once this data plane has stopped (a
     * close, or a failure: then its owner is told through {@link #onUnexpectedStop}).
     */
    boolean turnOnLoop() {
        try {
            if (running) {
                turn(false);
            }
        } catch (Throwable t) {
            LOG.log(Level.ERROR, "data plane stopped by an unexpected error", t);
            running = false;
        }
        if (!running) {
            stopped();
            return false;
        }
        return true;
    }

    /** The loop ended (or could not take this data plane): it stops as after a failure. */
    void stoppedOnLoop() {
        failedOnLoop();
        detachedFromLoop();
    }

    /** The loop cannot go on watching this data plane: it stops as after a failure, and the loop detaches it. */
    void failedOnLoop() {
        running = false;
        stopped();
    }

    /** The loop no longer touches this data plane: close may free what it used. */
    void detachedFromLoop() {
        detached.countDown();
    }

    // ---------------------------------------------------------------- live hand-over

    /**
     * Before {@link #freezeForHandover}, on the hand-over's thread (never the data plane's): waits,
     * up to {@code millis} per port, until each port's log writer has written what it holds and
     * each endpoint's helper thread has stopped where its descriptors can move. The rings must be
     * stopped already, so no new guest output arrives meanwhile.
     *
     * @throws IOException a port did not get there in time (everything is released again)
     */
    public void prepareHandover(long millis) throws IOException {
        List<PortManagement.Waitable> ports = call(management::handoverWaitables);
        try {
            for (PortManagement.Waitable w : ports) {
                if (w.log() != null && !w.log().awaitDrained(millis)) {
                    throw new IOException(w.label() + ": its log has not caught up within " + millis
                            + " ms (a slow disk?); cannot hand over now");
                }
                w.endpoint().prepareHandover(millis);
            }
        } catch (IOException | RuntimeException e) {
            call(() -> {
                management.handoverAbandoned();
                return null;
            });
            throw e;
        }
    }

    /**
     * Freezes the data plane for a live hand-over and describes it. The vhost-user session must
     * have stopped every ring first (held chains handed back, partial ones carried). From here on
     * the loop touches no ring, endpoint or guest memory until {@link #thaw}.
     *
     * @throws IOException an endpoint cannot be handed over (the data plane is not frozen then)
     */
    public DeviceSnapshot freezeForHandover() throws IOException {
        Object r = callToCompletion(() -> {
            if (queues.runningCount() != 0) {
                return new IOException(queues.runningCount() + " ring(s) still run; stop them before a hand-over");
            }
            queues.publishDue();
            List<DeviceSnapshot.Port> list;
            try {
                list = management.handoverPorts();
            } catch (IOException e) {
                return e;
            }
            frozen = true;
            return new DeviceSnapshot(map.maxPorts(), control.snapshot(), controlQueues.isDeviceReadySeen(), list,
                    management.removingConfigs(), System.nanoTime());
        });
        if (r instanceof IOException e) {
            throw e;
        }
        return (DeviceSnapshot) r;
    }

    /**
     * Adds the counter values a previous process had (see {@link MetricRegistry#counterValues}) to
     * this data plane's registry, on the data-plane thread; returns how many counters took a value.
     */
    public int carryCounters(java.util.Map<String, Long> values) {
        return callToCompletion(() -> metrics.carry(values));
    }

    // ---------------------------------------------------------------- crash-recovery checkpoints

    /** Where checkpoints go (data-plane thread only once set); null: none are taken. */
    private java.util.function.Consumer<DeviceSnapshot> checkpointSink;
    /** Something a checkpoint records changed since the last one (data-plane thread only). */
    private boolean checkpointDue;
    /** Checkpoints of the ports are at least this far apart (each duplicates every endpoint descriptor). */
    static final int CHECKPOINT_SPACING_MS = 10;
    private long lastCheckpointNanos = System.nanoTime() - CHECKPOINT_SPACING_MS * 1_000_000L;
    /** Checkpoints that could not be taken (a descriptor could not be duplicated); rate-limited lines. */
    private final LogLimiter checkpointLog = new LogLimiter(LOG);

    /**
     * From now on, after every loop cycle in which something a crash-recovery checkpoint records
     * changed (an endpoint descriptor watched or unwatched, a control message either way, a command
     * such as a port added or a ring started), hands {@code sink} a {@link DeviceSnapshot} of the
     * ports, taken on the data-plane thread without freezing anything: descriptors in it are
     * duplicates the sink owns. The sink must not block. One is taken at once.
     */
    public void checkpointTo(java.util.function.Consumer<DeviceSnapshot> sink) {
        callToCompletion(() -> {
            checkpointSink = sink;
            checkpointDue = true;
            work.mark(controlBit);
            return null;
        });
    }

    private void checkpointIfDue() {
        if (controlQueues.takeChanged()) {
            checkpointDue = true;
        }
        if (!checkpointDue || checkpointSink == null || frozen) {
            return;
        }
        long now = System.nanoTime();
        if (now - lastCheckpointNanos < CHECKPOINT_SPACING_MS * 1_000_000L) {
            return; // a guest toggling ports as fast as it can gets a checkpoint per spacing, not per cycle
        }
        lastCheckpointNanos = now;
        checkpointDue = false;
        List<DeviceSnapshot.Port> list;
        try {
            list = management.checkpointPorts();
        } catch (NativeException e) {
            deviceCounters.checkpointFailures.increment();
            checkpointLog.log(Level.ERROR, "cannot take a crash-recovery checkpoint: {0}; the next change tries again",
                    e.getMessage());
            return;
        }
        checkpointSink.accept(new DeviceSnapshot(map.maxPorts(), control.snapshot(), controlQueues.isDeviceReadySeen(),
                list, management.removingConfigs(), System.nanoTime()));
    }

    /**
     * Ends the freeze of a device rebuilt from a crash-recovery checkpoint: like {@link #thaw}, and
     * every running ring's call descriptor is signalled once, since the crashed process may have
     * completed chains without telling the guest.
     */
    public void thawAfterCrash() {
        thaw();
        callToCompletion(() -> {
            queues.signalAll();
            return null;
        });
    }

    /** Ends a freeze: after a hand-over that did not happen, or in the new process once it may serve. */
    public void thaw() {
        callToCompletion(() -> {
            if (frozen) {
                thawNow();
            }
            return null;
        });
    }

    /**
     * A hand-over of several devices did not happen after this one's {@link #prepareHandover}
     * (and perhaps its {@link #freezeForHandover}): thaws it if frozen, else releases what
     * preparing held (every port's endpoint helpers go on).
     */
    public void abandonHandover() {
        callToCompletion(() -> {
            if (frozen) {
                thawNow();
            } else {
                management.handoverAbandoned();
            }
            return null;
        });
    }

    private void thawNow() {
        frozen = false;
        management.handoverAbandoned();
        for (int id = 0; id < ports.length; id++) {
            if (ports[id] != null) {
                work.mark(id);
            }
        }
        work.mark(controlBit);
    }

    /**
     * Before {@link #start}: takes over the state a previous process handed over. Endpoints come
     * from {@code adopt} (rebuilt around the handed descriptors); the data plane stays frozen until
     * {@link #thaw}, so nothing moves before the previous process has let go.
     *
     * @throws IOException an endpoint could not be rebuilt (everything restored so far is closed)
     */
    public void restore(DeviceSnapshot s, Function<DeviceSnapshot.Port, Endpoint> adopt) throws IOException {
        if (thread.isAlive()) {
            throw new IllegalStateException("restore before start");
        }
        if (s.maxPorts() != map.maxPorts()) {
            throw new IOException("the hand-over is for " + s.maxPorts() + " ports, this device has " + map.maxPorts());
        }
        frozen = true;
        control.restore(s.control());
        if (s.deviceReadySeen()) {
            controlQueues.deviceReadySeen();
        }
        for (PortConfig c : s.removing()) {
            management.restoreRemoving(c);
        }
        for (DeviceSnapshot.Port p : s.ports()) {
            Endpoint e;
            try {
                e = adopt.apply(p);
            } catch (java.io.UncheckedIOException x) {
                throw x.getCause();
            }
            management.installHandedOver(p, e);
        }
    }

    public DeviceCounters counters() {
        return deviceCounters;
    }

    /** The registry the metrics exposition walks (queue, control and device counters; ports come from {@link #ports()}). */
    public MetricRegistry metrics() {
        return metrics;
    }

    // ---------------------------------------------------------------- calls from other threads

    public void startQueue(int index, QueueSetup setup) {
        callToCompletion(() -> {
            queues.start(index, setup);
            return null;
        });
    }

    public int stopQueue(int index) {
        return callToCompletion(() -> queues.stop(index));
    }

    /**
     * Runs {@code steps} on the data-plane thread in one hand-off, to completion: a replayed
     * hand-over session's features, memory table and ring starts, which would otherwise each wait
     * for this thread in turn. Calls {@code steps} makes to this data plane run inline.
     */
    public void inOneHandOff(Runnable steps) {
        callToCompletion(() -> {
            steps.run();
            return null;
        });
    }

    /** Stops several queues in one hand-off to the data-plane thread; next available indexes in order. */
    public int[] stopQueues(int[] indexes) {
        return callToCompletion(() -> {
            int[] next = new int[indexes.length];
            for (int i = 0; i < indexes.length; i++) {
                next[i] = queues.stop(indexes[i]);
            }
            return next;
        });
    }

    /** Switches to {@code table} on the data-plane thread, which then closes the table it had (issue 11.10). */
    public void setMemory(MemoryTable table) {
        callToCompletion(() -> {
            MemoryTable old = memoryTable;
            memoryTable = table;
            try {
                queues.setMemory(table.memory());
            } finally {
                old.close(); // nothing on this thread uses the old table any more
            }
            return null;
        });
    }

    public void reset() {
        callToCompletion(() -> {
            doReset();
            return null;
        });
    }

    /**
     * The adaptive poll window (--poll-us): after a cycle that moved a reply's worth of bytes
     * (less than a page), look at the rings and endpoints for up to {@code micros} µs before
     * sleeping in epoll; after bulk, sleep at once; 0 disables it.
     *
     * @throws IllegalArgumentException outside 0..{@value PollWindow#MAX_MICROS}
     */
    public void setPollMicros(int micros) {
        if (micros < 0 || micros > PollWindow.MAX_MICROS) {
            throw new IllegalArgumentException("poll window must be 0.." + PollWindow.MAX_MICROS + " µs, got " + micros);
        }
        call(() -> {
            pollWindow.setMicros(micros);
            return null;
        });
    }

    /** Whether the poll window is open now (for tests: a command's own wake-up leaves it as it is). */
    boolean pollWindowOpen() {
        return call(pollWindow::isOpen);
    }

    public void setFeatures(long acked) {
        call(() -> {
            control.setSizeNegotiated((acked & ConsoleDevice.F_SIZE) != 0);
            control.setMultiportNegotiated((acked & ConsoleDevice.F_MULTIPORT) != 0);
            work.mark(0); // port 0 may take host input now (single-port console)
            return null;
        });
    }

    public void emergencyWrite(int character) {
        call(() -> {
            management.emergencyWrite(character);
            return null;
        });
    }

    /** The counters of one queue (null when it never started); read on the data-plane thread. */
    public QueueStats queueStats(int index) {
        return call(() -> queues.stats(index));
    }

    /** A snapshot of every port's state, for listings; taken on the data-plane thread. */
    public List<PortStatus> ports() {
        return call(management::snapshot);
    }

    /** Where port events go (the management API); called on the data-plane thread. */
    public void setEventListener(PortEventListener listener) {
        management.setEventListener(listener);
    }

    /** max_nr_ports of the device. */
    public int maxPorts() {
        return map.maxPorts();
    }

    /** The control protocol's counters (readable from any thread). */
    public ControlStats controlStats() {
        return control.stats();
    }

    /**
     * Adds a port to the running device: its endpoint starts, and PORT_ADD goes to the guest if
     * the driver is ready (otherwise when it becomes ready). Queues of this id the guest already
     * started are attached at once.
     *
     * @throws PortRequestException (as the cause of an IllegalStateException from another thread)
     */
    public PortStatus addPort(PortConfig config) {
        if (Thread.currentThread() == thread) {
            throw new IllegalStateException("ports are added from outside the data-plane thread");
        }
        call(() -> {
            management.check(config); // refuse early: a refused port opens no endpoint
            return null;
        });
        Endpoint e;
        LogWriter log;
        try {
            log = management.openLog(config); // may block too; refused before the endpoint opens
            try {
                e = management.openEndpoint(config); // may block: here, not on the data-plane thread
            } catch (PortRequestException refused) {
                if (log != null) {
                    log.close();
                }
                throw refused;
            }
        } catch (PortRequestException refused) {
            throw new IllegalStateException(refused.getMessage(), refused); // as call() reports refusals
        }
        try {
            return call(() -> {
                checkpointDue = true;
                return management.add(config, e, log);
            });
        } catch (IllegalStateException notRun) {
            if (!running) {
                e.close(); // the command never ran: nobody else will close it
                if (log != null) {
                    log.close();
                }
            }
            throw notRun;
        }
    }

    /**
     * Starts following port {@code id}'s guest output: on the data-plane thread, the port's replay
     * ring is copied and {@code follower} registered in one step, so the copy and the live bytes
     * after it meet without a gap or a repeat. Returns the copy (empty without a replay ring).
     */
    public byte[] followLog(int id, LogFollower follower) {
        return call(() -> management.follow(id, follower));
    }

    /**
     * Removes a port: guest output already in its transmit queue is written to the host endpoint
     * as far as the endpoint takes it without blocking, the rest is completed to the guest and
     * reported; PORT_REMOVE is queued for the guest; the endpoint is closed. The id and name are
     * free again at once.
     */
    public RemovalReport removePort(int id) {
        RemovalReport r = call(() -> {
            checkpointDue = true;
            return management.remove(id);
        });
        for (java.nio.file.Path f : r.files()) { // on the remover's thread: the file system may be slow
            try {
                java.nio.file.Files.deleteIfExists(f);
            } catch (java.io.IOException e) {
                LOG.log(Level.WARNING, "port {0}: cannot remove {1}: {2}", id, f, e.getMessage());
            }
        }
        return r;
    }

    /** New terminal size of a console port (RESIZE to the guest when F_SIZE was negotiated). */
    public void resize(int id, int cols, int rows) {
        call(() -> {
            checkpointDue = true;
            management.resize(id, cols, rows);
            return null;
        });
    }

    /** The running queues and their counters, for metrics. */
    public List<QueueStatus> queues() {
        return call(() -> {
            List<QueueStatus> out = new ArrayList<>();
            for (int i = 0; i < queues.count(); i++) {
                if (queues.get(i) != null) {
                    out.add(new QueueStatus(i, map.portOf(i), QueueMap.isDeviceWrites(i) ? "rx" : "tx", queues.stats(i)));
                }
            }
            return out;
        });
    }

    private <T> T call(Supplier<T> action) {
        return call(action, false);
    }

    /**
     * For commands that decide how long guest memory and ring descriptors stay in use (start,
     * stop, memory, reset): they never time out, since a caller that went on would unmap or
     * close what queued work may still use. A warning is logged every
     * {@link #COMMAND_TIMEOUT_SECONDS} while waiting; only a dead data-plane thread ends the wait.
     */
    private <T> T callToCompletion(Supplier<T> action) {
        return call(action, true);
    }

    /** Commands other threads have handed to this data plane's thread (each one a wake-up and a wait). */
    private final java.util.concurrent.atomic.AtomicLong handOffs = new java.util.concurrent.atomic.AtomicLong();

    /** How many commands other threads have handed to the data-plane thread so far. */
    public long handOffs() {
        return handOffs.get();
    }

    private <T> T call(Supplier<T> action, boolean toCompletion) {
        if (Thread.currentThread() == thread) {
            return action.get();
        }
        if (!running) {
            throw new IllegalStateException("the data plane has stopped");
        }
        Command<T> c = new Command<>(action);
        handOffs.incrementAndGet();
        while (!commands.offer(c)) {
            LockSupport.parkNanos(100_000); // bounded queue full: wait for the worker to drain it
        }
        EventFd.wake(wake.fd());
        for (long waited = COMMAND_TIMEOUT_SECONDS; ; waited += COMMAND_TIMEOUT_SECONDS) {
            try {
                return c.result.get(COMMAND_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for the data plane", e);
            } catch (ExecutionException e) {
                throw new IllegalStateException(e.getCause().getMessage(), e.getCause());
            } catch (TimeoutException e) {
                if (!toCompletion) {
                    throw new IllegalStateException("the data plane did not answer within " + COMMAND_TIMEOUT_SECONDS + " s");
                }
                if ((!thread.isAlive() || ended) && !c.result.isDone()) {
                    throw new IllegalStateException("the data plane has stopped");
                }
                LOG.log(Level.WARNING, "still waiting for the data plane after {0} s (a ring or memory command cannot be"
                        + " abandoned)", waited);
            }
        }
    }

    private static final class Command<T> {
        final Supplier<T> action;
        final CompletableFuture<T> result = new CompletableFuture<>();

        Command(Supplier<T> action) {
            this.action = action;
        }

        void run() {
            try {
                result.complete(action.get());
            } catch (RuntimeException | Error e) {
                result.completeExceptionally(e);
            }
        }
    }

    // ---------------------------------------------------------------- the loop

    private void run() {
        try {
            while (running) {
                turn(true);
            }
        } catch (Throwable t) {
            LOG.log(Level.ERROR, "data plane stopped by an unexpected error", t);
        } finally {
            stopped();
        }
    }

    /**
     * One pass of the loop: wait for events ({@code block}: up to the duty cycle's wait; on a shared
     * loop not at all), dispatch them, run commands, move what can move. A defect is logged and the
     * loop goes on, unless it repeats on every pass (then it is thrown).
     */
    private void turn(boolean block) {
        if (frozen) {
            Epoll.poll(frozenEpoll.fd(), events, MAX_EVENTS, block ? 1000 : 0);
            EventFd.drain(wake.fd());
            runCommands();
            return;
        }
        int n;
        if (block) {
            int idle = waitMillis();
            int timeout = pollWindow.timeoutMillis(idle, System.nanoTime());
            n = idle != 0 && timeout == 0 ? spin() : Epoll.poll(epoll.fd(), events, MAX_EVENTS, timeout);
        } else {
            n = Epoll.poll(epoll.fd(), events, MAX_EVENTS, 0); // a shared loop waits for us (no poll window there)
        }
        if (n < 0 && n != -Errno.EINTR) {
            LOG.log(Level.ERROR, "epoll_wait failed: {0}", Errno.describe(-n));
            running = false;
            return;
        }
        for (int i = 0; i < n; i++) {
            dispatch(Epoll.eventData(events, i), Epoll.eventMask(events, i));
        }
        try {
            runCommands();
            management.tickEndpoints();
            service();
            long moved = pump.takeMoved();
            if (block && moved > 0) {
                pollWindow.moved(moved, System.nanoTime());
            }
            management.followTerminalSizes();
            checkpointIfDue();
            consecutiveFailures = 0;
        } catch (InternalError fault) {
            guestMemoryFault(fault); // issue 11.3b: SIGBUS in guest memory ends that session only
        } catch (RuntimeException bug) {
            // A defect must not silently freeze every port: log it and go on, unless it
            // repeats on every cycle, which would only spin.
            if (++consecutiveFailures > MAX_CONSECUTIVE_FAILURES) {
                throw bug;
            }
            LOG.log(Level.ERROR, "data plane cycle failed; carrying on", bug);
        }
    }

    /** The loop ended: answer commands that raced it, and tell the owner unless it asked for this. */
    private void stopped() {
        running = false;
        runCommands(); // fail nobody silently: commands that raced the stop still get an answer
        // A caller that saw running just before it turned false may queue after that drain; once
        // ended is set it gives up at its next check, and this second drain answers those between.
        ended = true;
        runCommands();
        Runnable stopped = onUnexpectedStop;
        if (!closeRequested && stopped != null) {
            stopped.run(); // issue 11.3c: the daemon exits rather than live on without a data plane
        }
    }

    /**
     * The poll window is open and nothing is marked: look at the epoll set without sleeping until
     * something is ready or the window closes. Its own small method, so that it is compiled and
     * inlined on its own (the run loop is compiled once, on stack, and a native call it does not
     * inline allocates its errno capture slice on every call).
     *
     * @return what epoll_wait returned last (0 when the window closed with nothing ready)
     */
    private int spin() {
        while (true) {
            int n = Epoll.poll(epoll.fd(), events, MAX_EVENTS, 0);
            if (n != 0 || !running || pollWindow.timeoutMillis(1, System.nanoTime()) != 0) {
                return n;
            }
            Thread.onSpinWait();
        }
    }

    // ---- frontend-caused faults end the session, not the data plane (issue 11) ----
    private volatile VhostUserBackend.SessionControl sessionControl;
    private volatile Runnable onUnexpectedStop;
    private volatile boolean closeRequested;
    private MemoryTable memoryTable = MemoryTable.empty();
    /** Lines the frontend can trigger (faults, broken kicks): at most 10 per 10 s. Data-plane thread only. */
    private final LogLimiter faultLog = new LogLimiter(LOG);

    /** How this data plane asks the vhost-user server to end the session (set by the server, once). */
    public void bindSession(VhostUserBackend.SessionControl control) {
        this.sessionControl = control;
    }

    /** Run on the data-plane thread if it ever ends other than through {@link #close()}. */
    public void onUnexpectedStop(Runnable action) {
        this.onUnexpectedStop = action;
    }

    /**
     * A fault in guest memory (the frontend truncated a memory file after it was mapped): stop
     * every ring without touching guest memory again, count it, and have the session ended; the
     * next session gets a working data plane.
     */
    private void guestMemoryFault(InternalError fault) {
        deviceCounters.guestMemoryFaults.increment();
        String why = "guest memory fault on the console device (" + fault.getMessage() + "): ending the session";
        faultLog.log(Level.ERROR, "{0}", why);
        queues.abandonAll(); // publishing would write to the faulting memory again
        endSession(why);
    }

    /** A kick descriptor that cannot be drained (not an eventfd after all, or broken): stop its ring. */
    private void kickFailed(int queue, long error) {
        deviceCounters.kickFailures.increment();
        String why = "queue " + queue + ": draining its kick descriptor failed (" + Errno.describe((int) -error)
                + "): queue stopped, ending the session";
        faultLog.log(Level.ERROR, "{0}", why);
        queues.stop(queue);
        endSession(why);
    }

    private void endSession(String why) {
        VhostUserBackend.SessionControl c = sessionControl;
        if (c != null) {
            c.endSession(why);
        }
    }

    /** The duty cycle: no wait while work is marked, short waits while completions linger or endpoints tick. */
    private int waitMillis() {
        if (!work.isEmpty() || controlQueues.wantsService()) {
            return 0;
        }
        if (checkpointDue && checkpointSink != null) {
            return CHECKPOINT_SPACING_MS; // a checkpoint held back by the spacing below
        }
        return queues.lingering() ? 1 : management.anyTicking() ? PortManagement.TICK_MS : 1000;
    }

    private void runCommands() {
        Command<?> c;
        while ((c = commands.poll()) != null) {
            c.run();
        }
    }

    static long token(long kind, int a, int b) {
        return kind << 56 | ((long) a & 0xffff_ffffL) << 8 | (b & 0xff);
    }

    private void dispatch(long data, int ev) {
        long kind = data >>> 56;
        int a = (int) (data >>> 8);
        int b = (int) (data & 0xff);
        if (kind == KIND_WAKE) {
            EventFd.drain(wake.fd());
        } else if (kind == KIND_KICK) {
            long drained = queues.kicked(a);
            if (drained < 0 && drained != -Errno.EAGAIN) {
                kickFailed(a, drained); // issue 11.2: never spin on a broken kick descriptor
            }
        } else if (kind == KIND_ENDPOINT) {
            if (b == ROLE_LISTEN) {
                management.listenReady(a, ev);
            } else {
                management.connectionReady(a, ev);
            }
        }
    }

    /** One pass over the marked work: control queues, then each marked port once, then completions. */
    private void service() {
        if (work.clear(controlBit)) {
            controlQueues.kicked();
        }
        for (int id = work.next(0); id >= 0 && id < controlBit; id = work.next(id + 1)) {
            work.clear(id);
            PortRuntime p = ports[id];
            if (p != null) {
                pump.service(p); // marks the port again when its budget ran out
            }
        }
        controlQueues.serviceReceive();
        queues.publishDue();
    }

    private void doReset() {
        queues.stopAll();
        management.forgetCarried();
        control.deviceReset();
        controlQueues.reset();
        LOG.log(Level.INFO, "device reset: queues stopped, guest-side port state cleared");
    }

    // ---------------------------------------------------------------- EndpointHost

    @Override
    public void watch(int fd, int eventMask, int port, int role) throws NativeException {
        int r = Epoll.ctl(epoll.fd(), Epoll.EPOLL_CTL_ADD, fd, eventMask, token(KIND_ENDPOINT, port, role));
        if (r < 0) {
            throw new NativeException("epoll_ctl(ADD fd " + fd + ")", -r);
        }
        checkpointDue = true;
    }

    @Override
    public void unwatch(int fd) {
        Epoll.ctl(epoll.fd(), Epoll.EPOLL_CTL_DEL, fd, 0, 0);
        checkpointDue = true;
    }

    @Override
    public void hostConnected(int port) {
        checkpointDue = true;
        management.hostConnected(port);
    }

    // ---------------------------------------------------------------- shutdown

    /** Has the loop stop at its next turn (at once when it has stopped already). */
    private void askToStop() {
        try {
            call(() -> {
                running = false;
                return null;
            });
        } catch (IllegalStateException e) {
            running = false;
        }
    }

    @Override
    public void close() {
        closeRequested = true;
        if (loop != null && started) {
            askToStop();
            try {
                if (!detached.await(5, TimeUnit.SECONDS)) {
                    LOG.log(Level.ERROR, "the event loop did not let go of this data plane within 5 s; its queues, memory"
                            + " and descriptors are left to the process exit");
                    return;
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        } else if (thread.isAlive()) {
            askToStop();
            try {
                thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (thread.isAlive()) {
                // Freeing rings, memory and descriptors under a running thread is use-after-free (issue 11.10).
                LOG.log(Level.ERROR, "the data-plane thread did not stop within 5 s; its queues, memory and"
                        + " descriptors are left to the process exit");
                return;
            }
        }
        running = false;
        List<Exception> errors = new ArrayList<>();
        for (int i = 0; i < queues.count(); i++) {
            try {
                queues.stop(i);
            } catch (RuntimeException e) {
                errors.add(e);
            }
        }
        management.closeAll(errors);
        wake.closeQuietly();
        frozenEpoll.closeQuietly();
        epoll.closeQuietly();
        arena.close();
        memoryTable.close();
        for (Exception e : errors) {
            LOG.log(Level.WARNING, "while shutting the data plane down: {0}", e.getMessage());
        }
    }
}
