package io.vportd.console.device;

import io.vportd.console.control.ControlListener;
import io.vportd.console.control.ControlMachine;
import io.vportd.console.control.PortConfig;
import io.vportd.console.endpoint.Endpoint;
import io.vportd.console.endpoint.EndpointHost;
import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.Posix;
import io.vportd.telemetry.LogLimiter;
import io.vportd.telemetry.MetricRegistry;
import io.vportd.vhost.QueueSetup;
import io.vportd.vring.Chain;
import io.vportd.vring.Direction;
import io.vportd.vring.GuestMemory;
import io.vportd.vring.QueueStats;
import io.vportd.vring.SplitQueue;
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
import java.util.function.Supplier;
import org.jctools.queues.atomic.MpscAtomicArrayQueue;

/**
 * The console device's data plane: one thread that owns every virtqueue, every endpoint and the
 * control state machine, and waits on one epoll set (kick eventfds, endpoint descriptors and its
 * own wake-up eventfd). Other threads (the vhost-user session, management) hand it work only
 * through a bounded lock-free command queue and wait for the answer.
 *
 * <p>Bytes move once, with readv/writev between the host descriptor and guest memory. Generic
 * ports get back-pressure by holding descriptors: a transmit chain the host cannot take yet stays
 * popped but unused, and nothing more is popped from that queue until it is taken. Console and
 * control transmit chains are completed at once, always.
 */
public final class DataPlane implements EndpointHost, ControlListener, AutoCloseable {

    private static final System.Logger LOG = System.getLogger("vportd.device");

    private static final int MAX_EVENTS = 64;
    /** Linux refuses readv/writev with more vectors than this. */
    private static final int IOV_MAX = 1024;
    /** Chains one port may move in one cycle before others get their turn. */
    private static final int CYCLE_BUDGET = 128;
    private static final int COMMAND_CAPACITY = 1024;
    private static final long COMMAND_TIMEOUT_SECONDS = 20;
    private static final int CONTROL_BUFFER = 4096;
    private static final int CONSOLE_BACKLOG = 64 * 1024;
    /**
     * Completions of generic-port transmit chains are published (and the guest interrupted) once
     * this many are waiting, or after {@link #TX_LINGER_NANOS}, not at the end of every cycle: the
     * guest only reuses those buffers, nothing waits on them, and each interrupt is costly for it
     * (vhost-user-test-device-pci has no MSI-X, so every one is a shared INTx that makes the
     * driver scan every queue). Measured with bench/run; see docs/benchmarks-guest.md.
     */
    private static final int TX_PUBLISH_BATCH = 32;
    private static final long TX_LINGER_NANOS = 1_000_000;

    private static final long KIND_WAKE = 1;
    private static final long KIND_KICK = 2;
    private static final long KIND_ENDPOINT = 3;

    private final QueueMap map;
    private final ControlMachine control;
    private final PortRuntime[] ports;
    private final SplitQueue[] queues;
    private final QueueStats[] queueStats;
    private final int[] kickFds;
    private final int[] callFds;
    private final boolean[] usedDirty;
    /** Per queue: completions pushed but not yet published (counted for generic transmit queues only). */
    private final int[] txUnpublished;
    /** When deferred transmit completions must be published at the latest (System.nanoTime), 0 if none wait. */
    private long txLingerDeadline;
    private final Fd epoll;
    private final Fd wake;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment events;
    private final MpscAtomicArrayQueue<Command<?>> commands = new MpscAtomicArrayQueue<>(COMMAND_CAPACITY);
    private final byte[] controlBuffer = new byte[CONTROL_BUFFER];
    private final byte[] copyBuffer = new byte[4096];
    private final DeviceCounters deviceCounters = new DeviceCounters();
    /** Lines the guest (or the frontend) can cause; port open/close has its own so a boot with many ports stays visible. */
    private final LogLimiter guestLog = new LogLimiter(LOG);
    private final LogLimiter portLog = new LogLimiter(LOG, 128, LogLimiter.DEFAULT_WINDOW_NANOS);
    /** Lines a host peer can cause (failed reads and writes). */
    private final LogLimiter hostLog = new LogLimiter(LOG);
    /** Every counter of this device (queues, control, device-wide; the daemon adds its own); ports are walked live. */
    private final MetricRegistry metrics = new MetricRegistry();
    private final Thread thread;

    private GuestMemory memory = GuestMemory.empty();
    private Chain controlTxChain;
    private Chain controlRxChain;
    private boolean controlRxHeld;
    /** Set when the control receive queue had no buffer last time; cleared by its kick. */
    private boolean controlRxStalled;
    private boolean controlDirty;
    private boolean deviceReadySeen;
    private volatile boolean running = true;

    // Management (hot-plug, events): see the "management" section below.
    private final java.util.function.Function<PortConfig, Endpoint> endpointFactory;
    private volatile PortEventListener eventListener = PortEventListener.NONE;
    /** Configuration of ports removed on the host side whose PORT_REMOVE has not gone out yet. */
    private final PortConfig[] removing;
    /** The port being added right now: its endpoint's connect event waits until the port-added event. */
    private int addingPort = -1;
    private boolean anyTicking;
    private long lastTick;

    public DataPlane(QueueMap map, List<PortConfig> configs, java.util.function.Function<PortConfig, Endpoint> endpoints)
            throws IOException {
        this.map = map;
        int queueCount = map.queueCount();
        this.queues = new SplitQueue[queueCount];
        this.queueStats = new QueueStats[queueCount];
        this.kickFds = new int[queueCount];
        this.callFds = new int[queueCount];
        this.usedDirty = new boolean[queueCount];
        this.txUnpublished = new int[queueCount];
        java.util.Arrays.fill(kickFds, -1);
        java.util.Arrays.fill(callFds, -1);
        this.ports = new PortRuntime[map.maxPorts()];
        this.removing = new PortConfig[map.maxPorts()];
        this.endpointFactory = endpoints;
        this.control = new ControlMachine(map.maxPorts(), this);
        for (int i = 0; i < queueCount; i++) {
            // One counter set per queue index for the device's life: counts survive ring restarts.
            queueStats[i] = new QueueStats();
            int port = map.portOf(i);
            metrics.register(queueStats[i].metrics(), "queue", Integer.toString(i),
                    "port", port == QueueMap.CONTROL ? "control" : Integer.toString(port),
                    "direction", QueueMap.isDeviceWrites(i) ? "rx" : "tx");
        }
        metrics.register(control.stats().metrics());
        metrics.register(deviceCounters.metrics());
        this.epoll = Posix.epollCreate();
        this.wake = Posix.eventfd(0, Posix.EFD_NONBLOCK | Posix.EFD_CLOEXEC);
        this.events = arena.allocate((long) Posix.EPOLL_EVENT_SIZE * MAX_EVENTS, 8);
        int r = Posix.epollCtl(epoll.fd(), Posix.EPOLL_CTL_ADD, wake.fd(), Posix.EPOLLIN, token(KIND_WAKE, 0, 0));
        if (r < 0) {
            throw new NativeException("epoll_ctl(ADD wake eventfd)", -r);
        }
        for (PortConfig c : configs) {
            installPort(c, endpoints.apply(c));
        }
        this.thread = new Thread(this::run, "vportd-dataplane");
        this.thread.setDaemon(true);
    }

    public void start() {
        thread.start();
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
        call(() -> {
            doStartQueue(index, setup);
            return null;
        });
    }

    public int stopQueue(int index) {
        return call(() -> doStopQueue(index));
    }

    public void setMemory(GuestMemory newMemory) {
        call(() -> {
            doSetMemory(newMemory);
            return null;
        });
    }

    public void reset() {
        call(() -> {
            doReset();
            return null;
        });
    }

    public void setFeatures(long acked) {
        call(() -> {
            control.setSizeNegotiated((acked & 1L) != 0);
            return null;
        });
    }

    public void emergencyWrite(int character) {
        call(() -> {
            doEmergencyWrite(character);
            return null;
        });
    }

    /** The counters of one queue (null when it never started); read on the data-plane thread. */
    public QueueStats queueStats(int index) {
        return call(() -> index >= 0 && index < queueStats.length ? queueStats[index] : null);
    }

    /** A snapshot of every port's state, for listings; taken on the data-plane thread. */
    public List<PortStatus> ports() {
        return call(this::snapshot);
    }

    private <T> T call(Supplier<T> action) {
        if (Thread.currentThread() == thread) {
            return action.get();
        }
        if (!running) {
            throw new IllegalStateException("the data plane has stopped");
        }
        Command<T> c = new Command<>(action);
        while (!commands.offer(c)) {
            LockSupport.parkNanos(100_000); // bounded queue full: wait for the worker to drain it
        }
        Posix.eventfdSignal(wake.fd());
        try {
            return c.result.get(COMMAND_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the data plane", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause().getMessage(), e.getCause());
        } catch (TimeoutException e) {
            throw new IllegalStateException("the data plane did not answer within " + COMMAND_TIMEOUT_SECONDS + " s");
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
                int n = Posix.epollWait(epoll.fd(), events, MAX_EVENTS,
                        anyDirty() ? 0 : txLingerDeadline != 0 ? 1 : anyTicking ? TICK_MS : 1000);
                if (n < 0 && n != -Errno.EINTR) {
                    LOG.log(Level.ERROR, "epoll_wait failed: {0}", Errno.describe(-n));
                    break;
                }
                for (int i = 0; i < n; i++) {
                    dispatch(Posix.epollEventData(events, i), Posix.epollEventMask(events, i));
                }
                try {
                    runCommands();
                    tickEndpoints();
                    service();
                    followTerminalSizes();
                    consecutiveFailures = 0;
                } catch (RuntimeException bug) {
                    // A defect must not silently freeze every port: log it and go on, unless it
                    // repeats on every cycle, which would only spin.
                    if (++consecutiveFailures > MAX_CONSECUTIVE_FAILURES) {
                        throw bug;
                    }
                    LOG.log(Level.ERROR, "data plane cycle failed; carrying on", bug);
                }
            }
        } catch (Throwable t) {
            LOG.log(Level.ERROR, "data plane stopped by an unexpected error", t);
        } finally {
            running = false;
            runCommands(); // fail nobody silently: commands that raced the stop still get an answer
        }
    }

    private static final int MAX_CONSECUTIVE_FAILURES = 100;
    private int consecutiveFailures;

    private void runCommands() {
        Command<?> c;
        while ((c = commands.poll()) != null) {
            c.run();
        }
    }

    private static long token(long kind, int a, int b) {
        return kind << 56 | ((long) a & 0xffff_ffffL) << 8 | (b & 0xff);
    }

    private void dispatch(long data, int ev) {
        long kind = data >>> 56;
        int a = (int) (data >>> 8);
        int b = (int) (data & 0xff);
        if (kind == KIND_WAKE) {
            Posix.eventfdDrain(wake.fd());
        } else if (kind == KIND_KICK) {
            if (a >= 0 && a < kickFds.length && kickFds[a] >= 0) {
                Posix.eventfdDrain(kickFds[a]);
                markQueue(a);
            }
        } else if (kind == KIND_ENDPOINT) {
            PortRuntime p = a >= 0 && a < ports.length ? ports[a] : null;
            if (p == null) {
                return;
            }
            if (b == ROLE_LISTEN) {
                p.endpoint.onListenReady(ev);
            } else {
                if ((ev & (Posix.EPOLLIN | Posix.EPOLLHUP | Posix.EPOLLRDHUP | Posix.EPOLLERR)) != 0) {
                    p.hostReadable = true;
                }
                if ((ev & (Posix.EPOLLOUT | Posix.EPOLLHUP | Posix.EPOLLERR)) != 0) {
                    p.hostWritable = true;
                }
                p.dirty = true;
            }
        }
    }

    private void markQueue(int queue) {
        int port = map.portOf(queue);
        if (port == QueueMap.CONTROL) {
            controlDirty = true;
        } else if (port >= 0 && ports[port] != null) {
            ports[port].dirty = true;
        }
    }

    private boolean anyDirty() {
        if (controlDirty || (control.hasOutgoing() && queues[QueueMap.CONTROL_RX] != null && !controlRxStalled)) {
            return true;
        }
        for (PortRuntime p : ports) {
            if (p != null && p.dirty) {
                return true;
            }
        }
        return false;
    }

    private void service() {
        if (controlDirty) {
            controlDirty = false;
            controlRxStalled = false;
            serviceControlTransmit();
        }
        for (PortRuntime p : ports) {
            if (p != null && p.dirty) {
                p.dirty = false;
                serviceTransmit(p);
                serviceReceive(p);
            }
        }
        serviceControlReceive();
        boolean lingerOver = txLingerDeadline != 0 && System.nanoTime() - txLingerDeadline >= 0;
        boolean deferred = false;
        for (int q = 0; q < usedDirty.length; q++) {
            if (usedDirty[q]) {
                int waiting = txUnpublished[q];
                SplitQueue vq = queues[q];
                if (waiting > 0 && !lingerOver && vq != null && waiting < Math.min(TX_PUBLISH_BATCH, vq.size() / 4)) {
                    deferred = true; // a generic transmit queue with few completions: let them gather
                    continue;
                }
                publish(q);
            }
        }
        if (!deferred) {
            txLingerDeadline = 0;
        } else if (txLingerDeadline == 0 || lingerOver) {
            txLingerDeadline = System.nanoTime() + TX_LINGER_NANOS;
        }
    }

    /** Publishes queue {@code q}'s used entries and interrupts the guest if it asked for that. */
    private void publish(int q) {
        usedDirty[q] = false;
        txUnpublished[q] = 0;
        SplitQueue vq = queues[q];
        if (vq != null && vq.publishUsed() && callFds[q] >= 0) {
            Posix.eventfdSignal(callFds[q]);
        }
    }

    private static final long SIZE_CHECK_NANOS = 500_000_000L;
    private long nextSizeCheck;

    /** Console ports on a terminal follow its window size, the way a SIGWINCH handler would. */
    private void followTerminalSizes() {
        long now = System.nanoTime();
        if (now - nextSizeCheck < 0) {
            return;
        }
        nextSizeCheck = now + SIZE_CHECK_NANOS;
        for (PortRuntime p : ports) {
            if (p == null || !p.isConsole()) {
                continue;
            }
            int fd = p.endpoint.terminalFd();
            if (fd < 0) {
                continue;
            }
            int size = Posix.windowSize(fd);
            if (size > 0 && size != p.terminalSize) {
                p.terminalSize = size;
                control.resize(p.config.id(), Posix.windowCols(size), Posix.windowRows(size));
                LOG.log(Level.DEBUG, "{0}: terminal is now {1}x{2}", p.label, Posix.windowCols(size), Posix.windowRows(size));
            }
        }
    }

    /** Pops a chain; when none is there, re-arms the guest's kick and looks once more. */
    private static int popOrArm(SplitQueue q, Chain c) {
        int r = q.pop(c);
        if (r == 0 && q.enableNotifications()) {
            r = q.pop(c);
        }
        return r;
    }

    // ---------------------------------------------------------------- control queues

    private void serviceControlTransmit() {
        SplitQueue q = queues[QueueMap.CONTROL_TX];
        if (q == null) {
            return;
        }
        for (int budget = CYCLE_BUDGET; budget > 0; budget--) {
            int r = popOrArm(q, controlTxChain);
            if (r == 0) {
                return;
            }
            usedDirty[QueueMap.CONTROL_TX] = true;
            if (r < 0) {
                continue; // a bad chain: the queue completed it with length 0 and counted it
            }
            int len = (int) Math.min(controlTxChain.totalLength(), controlBuffer.length);
            int got = controlTxChain.copyOut(0, controlBuffer, 0, len);
            // Complete first: the guest spins until the buffer comes back.
            q.pushUsed(controlTxChain.head(), 0);
            control.onGuestMessage(controlBuffer, 0, got);
        }
        controlDirty = true;
    }

    private void serviceControlReceive() {
        SplitQueue q = queues[QueueMap.CONTROL_RX];
        if (q == null) {
            return;
        }
        while (control.hasOutgoing()) {
            if (!controlRxHeld) {
                int r = popOrArm(q, controlRxChain);
                if (r == 0) {
                    controlRxStalled = true; // the guest's next kick on this queue resumes us
                    return;
                }
                if (r < 0) {
                    usedDirty[QueueMap.CONTROL_RX] = true;
                    continue;
                }
                controlRxHeld = true;
            }
            int len = control.pollOutgoing(controlBuffer);
            if (len <= 0) {
                return; // keep the buffer for the next message
            }
            int wrote = controlRxChain.copyIn(controlBuffer, 0, len);
            if (wrote < len) {
                deviceCounters.controlTruncated.increment();
                guestLog.log(Level.WARNING, "control message of {0} bytes truncated to the guest buffer of {1}", len, wrote);
            }
            q.pushUsed(controlRxChain.head(), wrote);
            controlRxHeld = false;
            usedDirty[QueueMap.CONTROL_RX] = true;
        }
    }

    // ---------------------------------------------------------------- port data

    private void serviceTransmit(PortRuntime p) {
        SplitQueue q = p.transmit;
        if (q == null) {
            return;
        }
        if (p.isConsole()) {
            consoleTransmit(p, q);
            return;
        }
        Endpoint e = p.endpoint;
        boolean discard = e.discardsOutput();
        if (!discard && (!e.connected() || e.outputFd() < 0)) {
            return; // no host peer: hold, the guest writer waits
        }
        int txq = map.transmitQueue(p.config.id());
        for (int budget = CYCLE_BUDGET; budget > 0; budget--) {
            Chain c = p.transmitChain;
            if (!p.transmitHeld) {
                int r = popOrArm(q, c);
                if (r == 0) {
                    return;
                }
                if (r < 0) {
                    usedDirty[txq] = true;
                    continue;
                }
                p.transmitHeld = true;
            }
            if (discard) {
                p.counters.add(PortCounters.DISCARDED_BYTES, c.totalLength());
            } else {
                if (!p.hostWritable) {
                    return; // EPOLLOUT brings us back
                }
                long n = Posix.writev(e.outputFd(), c.iovAddress(), Math.min(c.iovCount(), IOV_MAX));
                if (n < 0) {
                    if (n == -Errno.EAGAIN) {
                        p.hostWritable = false;
                        p.counters.add(PortCounters.HELD_WAITS, 1);
                    } else {
                        p.counters.add(PortCounters.HOST_WRITE_ERRORS, 1);
                        hostLog.log(Level.WARNING, "{0}: writing to {1} failed: {2}; guest data is held for the next host peer",
                                p.label, e.describe(), Errno.describe((int) -n));
                        hostLost(p);
                    }
                    return;
                }
                p.counters.add(PortCounters.BYTES_TO_HOST, n);
                if (c.advance(n) > 0) {
                    continue; // partly taken: try the rest (usually EAGAIN next)
                }
            }
            q.pushUsed(c.head(), 0);
            p.transmitHeld = false;
            p.counters.add(PortCounters.CHAINS_TO_HOST, 1);
            usedDirty[txq] = true;
            txUnpublished[txq]++;
        }
        p.dirty = true; // budget used up: come back next cycle
    }

    private void consoleTransmit(PortRuntime p, SplitQueue q) {
        flushConsoleBacklog(p);
        int txq = map.transmitQueue(p.config.id());
        Chain c = p.transmitChain;
        for (int budget = CYCLE_BUDGET; budget > 0; budget--) {
            int r = popOrArm(q, c);
            if (r == 0) {
                return;
            }
            usedDirty[txq] = true;
            if (r < 0) {
                continue;
            }
            long total = c.totalLength();
            Endpoint e = p.endpoint;
            if (e.discardsOutput()) {
                p.counters.add(PortCounters.DISCARDED_BYTES, total);
            } else {
                long written = 0;
                if (p.consoleBacklog.isEmpty() && e.connected() && e.outputFd() >= 0 && p.hostWritable) {
                    long n = Posix.writev(e.outputFd(), c.iovAddress(), Math.min(c.iovCount(), IOV_MAX));
                    if (n > 0) {
                        written = n;
                    } else if (n == -Errno.EAGAIN) {
                        p.hostWritable = false;
                    } else if (n < 0) {
                        hostLog.log(Level.WARNING, "{0}: console write to {1} failed: {2}", p.label, e.describe(),
                                Errno.describe((int) -n));
                        hostLost(p);
                    }
                }
                p.counters.add(PortCounters.BYTES_TO_HOST, written);
                // What the host did not take now waits in the bounded backlog (or is counted as dropped).
                for (long off = written; off < total; ) {
                    int n = (int) Math.min(copyBuffer.length, total - off);
                    int got = c.copyOut(off, copyBuffer, 0, n);
                    if (got <= 0) {
                        break;
                    }
                    p.keepConsoleOutput(copyBuffer, 0, got);
                    off += got;
                }
            }
            q.pushUsed(c.head(), 0);
            p.counters.add(PortCounters.CHAINS_TO_HOST, 1);
        }
        p.dirty = true;
    }

    private void flushConsoleBacklog(PortRuntime p) {
        ConsoleOutputBuffer b = p.consoleBacklog;
        Endpoint e = p.endpoint;
        while (!b.isEmpty() && e.connected() && e.outputFd() >= 0 && p.hostWritable) {
            long n = Posix.write(e.outputFd(), b.readAddress(), b.contiguous());
            if (n == -Errno.EAGAIN) {
                p.hostWritable = false;
                return;
            }
            if (n <= 0) {
                hostLost(p);
                return;
            }
            b.consumed((int) n);
            p.counters.add(PortCounters.BYTES_TO_HOST, n);
        }
    }

    private void serviceReceive(PortRuntime p) {
        SplitQueue q = p.receive;
        Endpoint e = p.endpoint;
        if (q == null || !p.guestOpen || !e.connected() || !p.hostReadable) {
            return; // host data waits in the host's socket: its writer blocks, nothing is lost
        }
        int fd = e.inputFd();
        if (fd < 0) {
            return;
        }
        int rxq = map.receiveQueue(p.config.id());
        Chain c = p.receiveChain;
        for (int budget = CYCLE_BUDGET; budget > 0; budget--) {
            if (!p.receiveHeld) {
                int r = popOrArm(q, c);
                if (r == 0) {
                    return; // the guest's kick when it adds buffers brings us back
                }
                if (r < 0) {
                    usedDirty[rxq] = true;
                    continue;
                }
                p.receiveHeld = true;
            }
            long n = Posix.readv(fd, c.iovAddress(), Math.min(c.iovCount(), IOV_MAX));
            if (n == -Errno.EAGAIN) {
                p.hostReadable = false;
                return;
            }
            if (n <= 0) {
                if (n < 0) {
                    hostLog.log(Level.WARNING, "{0}: reading from {1} failed: {2}", p.label, e.describe(),
                            Errno.describe((int) -n));
                }
                hostLost(p); // the held receive buffer waits for the next peer
                return;
            }
            q.pushUsed(c.head(), (int) n);
            p.receiveHeld = false;
            p.counters.add(PortCounters.BYTES_TO_GUEST, n);
            p.counters.add(PortCounters.CHAINS_TO_GUEST, 1);
            usedDirty[rxq] = true;
        }
        p.dirty = true;
    }

    private void hostLost(PortRuntime p) {
        Endpoint e = p.endpoint;
        e.hostGone();
        p.hostReadable = false;
        if (!e.connected()) {
            p.hostWritable = false;
            control.hostDisconnected(p.config.id());
            emit(PortEvent.HOST_DISCONNECTED, p, null);
        }
    }

    // ---------------------------------------------------------------- EndpointHost

    @Override
    public void watch(int fd, int eventMask, int port, int role) throws NativeException {
        int r = Posix.epollCtl(epoll.fd(), Posix.EPOLL_CTL_ADD, fd, eventMask, token(KIND_ENDPOINT, port, role));
        if (r < 0) {
            throw new NativeException("epoll_ctl(ADD fd " + fd + ")", -r);
        }
    }

    @Override
    public void unwatch(int fd) {
        Posix.epollCtl(epoll.fd(), Posix.EPOLL_CTL_DEL, fd, 0, 0);
    }

    @Override
    public void hostConnected(int port) {
        PortRuntime p = ports[port];
        p.hostReadable = true;
        p.hostWritable = true;
        p.dirty = true;
        control.hostConnected(port);
        if (port != addingPort) {
            emit(PortEvent.HOST_CONNECTED, p, null);
        }
    }

    // ---------------------------------------------------------------- ControlListener

    @Override
    public void guestOpened(int id) {
        PortRuntime p = ports[id];
        if (p != null) {
            p.guestOpen = true;
            p.dirty = true;
            portLog.log(Level.INFO, "{0}: guest opened the port", p.label);
            emit(PortEvent.GUEST_OPEN, p, null);
        }
    }

    @Override
    public void guestClosed(int id) {
        PortRuntime p = ports[id];
        if (p != null) {
            p.guestOpen = false;
            portLog.log(Level.INFO, "{0}: guest closed the port", p.label);
            emit(PortEvent.GUEST_CLOSED, p, null);
        }
    }

    @Override
    public void portReady(int id) {
        PortRuntime p = ports[id];
        LOG.log(Level.DEBUG, "{0}: guest reports the port ready", p == null ? "port " + id : p.label);
        if (p != null) {
            emit(PortEvent.PORT_READY, p, null);
        }
    }

    @Override
    public void portFailed(int id, String why) {
        PortRuntime p = ports[id];
        guestLog.log(Level.WARNING, "{0}: guest failed to set up the port: {1}", p == null ? "port " + id : p.label, why);
        if (p != null) {
            emit(PortEvent.PORT_FAILED, p, why);
        }
    }

    @Override
    public void deviceReady(boolean ok) {
        deviceReadySeen = true; // the control machine logs the event itself
    }

    // ---------------------------------------------------------------- commands (data-plane thread)

    private void installPort(PortConfig c, Endpoint e) throws IOException {
        PortRuntime p = new PortRuntime(c, e, CONSOLE_BACKLOG);
        ports[c.id()] = p;
        control.addPort(c);
        e.start(this, c.id());
    }

    private void doStartQueue(int index, QueueSetup s) {
        if (index < 0 || index >= queues.length) {
            throw new IllegalArgumentException("queue " + index + " is outside the device's " + queues.length);
        }
        if (queues[index] != null) {
            doStopQueue(index);
        }
        Direction dir = QueueMap.isDeviceWrites(index) ? Direction.DEVICE_WRITES : Direction.DEVICE_READS;
        QueueStats stats = queueStats[index];
        SplitQueue q = new SplitQueue(index, s.size(), s.desc(), s.avail(), s.used(), s.eventIdx(), dir, stats);
        q.setMemory(memory);
        q.setNextAvail(s.firstAvailIndex());
        int r = Posix.epollCtl(epoll.fd(), Posix.EPOLL_CTL_ADD, s.kickFd(), Posix.EPOLLIN, token(KIND_KICK, index, 0));
        if (r < 0) {
            throw new IllegalStateException("cannot watch the kick eventfd of queue " + index + ": " + Errno.describe(-r));
        }
        queues[index] = q;
        kickFds[index] = s.kickFd();
        callFds[index] = s.callFd();
        int port = map.portOf(index);
        if (port == QueueMap.CONTROL) {
            if (index == QueueMap.CONTROL_TX) {
                controlTxChain = new Chain(s.size());
                if (s.firstAvailIndex() != 0 && !deviceReadySeen) {
                    // A frontend re-attached us to a guest whose driver is long past DEVICE_READY
                    // and will never send it again: rebuild the port state as if it had.
                    guestLog.log(Level.INFO, "control queue resumes at {0}: the guest driver is already running; re-announcing ports",
                            s.firstAvailIndex());
                    control.onGuestMessage(DEVICE_READY_OK, 0, DEVICE_READY_OK.length);
                }
            } else {
                controlRxChain = new Chain(s.size());
                controlRxHeld = false;
            }
            controlDirty = true;
        } else if (port >= 0 && ports[port] != null) {
            PortRuntime p = ports[port];
            if (dir == Direction.DEVICE_WRITES) {
                p.receive = q;
                p.receiveChain = new Chain(s.size());
                p.receiveHeld = false;
            } else {
                p.transmit = q;
                p.transmitChain = new Chain(s.size());
                p.transmitHeld = false;
            }
            p.dirty = true;
        }
        LOG.log(Level.DEBUG, "queue {0} started: {1} entries, event idx {2}", index, s.size(), s.eventIdx());
    }

    private static final byte[] DEVICE_READY_OK = {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0, 0, 1, 0};

    private int doStopQueue(int index) {
        if (index < 0 || index >= queues.length || queues[index] == null) {
            return 0;
        }
        if (usedDirty[index]) {
            publish(index); // completions still gathering go to the guest before the ring stops
        }
        SplitQueue q = queues[index];
        Posix.epollCtl(epoll.fd(), Posix.EPOLL_CTL_DEL, kickFds[index], 0, 0);
        int next = q.nextAvail();
        int port = map.portOf(index);
        Chain released = null;
        if (port == QueueMap.CONTROL) {
            if (index == QueueMap.CONTROL_TX) {
                released = controlTxChain;
                controlTxChain = null;
            } else {
                if (controlRxHeld) {
                    next = (next - 1) & 0xffff; // hand the unused buffer back to be popped again
                    controlRxHeld = false;
                }
                released = controlRxChain;
                controlRxChain = null;
            }
        } else if (port >= 0 && ports[port] != null) {
            PortRuntime p = ports[port];
            if (p.receive == q) {
                if (p.receiveHeld) {
                    next = (next - 1) & 0xffff;
                    p.receiveHeld = false;
                }
                released = p.receiveChain;
                p.receive = null;
                p.receiveChain = null;
            } else if (p.transmit == q) {
                if (p.transmitHeld) {
                    // The guest's bytes were not all taken: the chain is offered again after a
                    // restart (a partly written chain is then sent again from its start).
                    next = (next - 1) & 0xffff;
                    p.transmitHeld = false;
                }
                released = p.transmitChain;
                p.transmit = null;
                p.transmitChain = null;
            }
        }
        if (released != null) {
            released.close();
        }
        queues[index] = null;
        kickFds[index] = -1;
        callFds[index] = -1;
        usedDirty[index] = false;
        txUnpublished[index] = 0;
        return next;
    }

    private void doSetMemory(GuestMemory m) {
        memory = m;
        for (SplitQueue q : queues) {
            if (q != null) {
                q.setMemory(m);
            }
        }
        // Held chains point into the old table: keep only those still inside the new one.
        for (PortRuntime p : ports) {
            if (p == null) {
                continue;
            }
            if (p.transmitHeld && !stillMapped(p.transmitChain, m)) {
                guestLog.log(Level.WARNING, "{0}: held guest buffer left guest memory on a memory table change; completing it empty",
                        p.label);
                p.transmit.pushUsed(p.transmitChain.head(), 0);
                p.transmitHeld = false;
                usedDirty[map.transmitQueue(p.config.id())] = true;
            }
            if (p.receiveHeld && !stillMapped(p.receiveChain, m)) {
                p.receive.pushUsed(p.receiveChain.head(), 0);
                p.receiveHeld = false;
                usedDirty[map.receiveQueue(p.config.id())] = true;
            }
        }
    }

    private static boolean stillMapped(Chain c, GuestMemory m) {
        for (int i = 0; i < c.segmentCount(); i++) {
            if (!m.containsHost(c.hostAddress(i), c.length(i))) {
                return false;
            }
        }
        return true;
    }

    private void doReset() {
        for (int i = 0; i < queues.length; i++) {
            doStopQueue(i);
        }
        control.deviceReset();
        deviceReadySeen = false;
        for (PortRuntime p : ports) {
            if (p != null) {
                p.guestOpen = false;
            }
        }
        LOG.log(Level.INFO, "device reset: queues stopped, guest-side port state cleared");
    }

    private void doEmergencyWrite(int character) {
        for (PortRuntime p : ports) {
            if (p != null && p.isConsole()) {
                p.keepConsoleOutput(new byte[] {(byte) character}, 0, 1);
                p.dirty = true;
                deviceCounters.emergencyWrites.increment();
                flushConsoleBacklog(p);
                return;
            }
        }
        deviceCounters.emergencyWritesDropped.increment();
    }

    private List<PortStatus> snapshot() {
        List<PortStatus> out = new ArrayList<>();
        for (PortRuntime p : ports) {
            if (p != null) {
                out.add(new PortStatus(p.config.id(), p.config.name(), p.config.console(), p.endpoint.describe(),
                        p.guestOpen, p.endpoint.connected(), p.transmitHeld, p.counters));
            }
        }
        return out;
    }

    // ---------------------------------------------------------------- management (hot-plug, events)
    //
    // Public entry points for the management API. Each runs on the data-plane thread through
    // call(); refusals are PortRequestExceptions (call() wraps them, keeping them as the cause).

    private static final int TICK_MS = 100;

    /** Where port events go (the management API); called on the data-plane thread. */
    public void setEventListener(PortEventListener listener) {
        this.eventListener = listener == null ? PortEventListener.NONE : listener;
    }

    /** max_nr_ports of the device. */
    public int maxPorts() {
        return map.maxPorts();
    }

    /** The control protocol's counters (readable from any thread). */
    public io.vportd.console.control.ControlStats controlStats() {
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
        return call(() -> doAddPort(config));
    }

    /**
     * Removes a port: guest output already in its transmit queue is written to the host endpoint
     * as far as the endpoint takes it without blocking, the rest is completed to the guest and
     * reported; PORT_REMOVE is queued for the guest; the endpoint is closed. The id and name are
     * free again at once.
     */
    public RemovalReport removePort(int id) {
        return call(() -> doRemovePort(id));
    }

    /** New terminal size of a console port (RESIZE to the guest when F_SIZE was negotiated). */
    public void resize(int id, int cols, int rows) {
        call(() -> {
            PortRuntime p = id >= 0 && id < ports.length ? ports[id] : null;
            if (p == null) {
                throw new PortRequestException(PortRequestException.Reason.NO_SUCH_PORT, "there is no port " + id);
            }
            if (!p.isConsole()) {
                throw new PortRequestException(PortRequestException.Reason.NOT_CONSOLE,
                        p.label + " is not a console port; only consoles have a size");
            }
            if (cols < 1 || cols > 0xFFFF || rows < 1 || rows > 0xFFFF) {
                throw new PortRequestException(PortRequestException.Reason.INVALID,
                        "cols and rows must be 1..65535, got " + cols + "x" + rows);
            }
            control.resize(id, cols, rows);
            return null;
        });
    }

    /** The running queues and their counters, for metrics. */
    public List<QueueStatus> queues() {
        return call(() -> {
            List<QueueStatus> out = new ArrayList<>();
            for (int i = 0; i < queues.length; i++) {
                if (queues[i] != null) {
                    out.add(new QueueStatus(i, map.portOf(i), QueueMap.isDeviceWrites(i) ? "rx" : "tx", queueStats[i]));
                }
            }
            return out;
        });
    }

    private void emit(String type, PortRuntime p, String detail) {
        emit(type, p.config, detail);
    }

    private void emit(String type, PortConfig c, String detail) {
        try {
            eventListener.onPortEvent(new PortEvent(type, c.id(), c.name(), detail));
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "port event listener failed on {0}: {1}", type, e.toString());
        }
    }

    @Override
    public void portRemoved(int id) {
        PortConfig c = id >= 0 && id < removing.length ? removing[id] : null;
        if (c != null) {
            removing[id] = null;
            LOG.log(Level.INFO, "{0}: the guest was told the port is gone", PortRuntime.labelOf(c));
            emit(PortEvent.PORT_REMOVED, c, null);
        }
        PortRuntime again = id >= 0 && id < ports.length ? ports[id] : null;
        if (again != null && again.endpoint.connected()) {
            // Re-added while PORT_REMOVE was pending: the control machine installed the new port
            // just now and could not take its host state before.
            control.hostConnected(id);
        }
    }

    private PortStatus doAddPort(PortConfig c) {
        int id = c.id();
        if (id >= ports.length) {
            throw new PortRequestException(PortRequestException.Reason.ID_OUT_OF_RANGE,
                    "port id " + id + " is not below max ports " + ports.length);
        }
        if (ports[id] != null) {
            throw new PortRequestException(PortRequestException.Reason.ID_TAKEN,
                    "port id " + id + " is already used by " + ports[id].label);
        }
        if (c.name() != null) {
            for (PortRuntime other : ports) {
                if (other != null && c.name().equals(other.config.name())) {
                    throw new PortRequestException(PortRequestException.Reason.NAME_TAKEN,
                            "port name '" + c.name() + "' is already used by port " + other.config.id());
                }
            }
        }
        if (removing[id] != null && c.console() != removing[id].console()) {
            // The guest keeps its hvc set-up per id until it has seen PORT_REMOVE; keep it simple.
            LOG.log(Level.DEBUG, "port {0} re-added with a different console flag while its removal is pending", id);
        }
        Endpoint e;
        try {
            e = endpointFactory.apply(c);
        } catch (RuntimeException ex) {
            throw new PortRequestException(PortRequestException.Reason.ENDPOINT_FAILED, ex.getMessage(), ex);
        }
        PortRuntime p = new PortRuntime(c, e, CONSOLE_BACKLOG);
        ports[id] = p;
        addingPort = id;
        try {
            e.start(this, id);
        } catch (IOException | RuntimeException ex) {
            ports[id] = null;
            try {
                e.close();
            } catch (RuntimeException closeFailure) {
                ex.addSuppressed(closeFailure);
            }
            if (p.consoleBacklog != null) {
                p.consoleBacklog.close();
            }
            throw new PortRequestException(PortRequestException.Reason.ENDPOINT_FAILED,
                    p.label + ": cannot start endpoint " + c.endpoint().toSpec() + ": " + ex.getMessage(), ex);
        } finally {
            addingPort = -1;
        }
        try {
            control.addPort(c);
        } catch (IllegalArgumentException ex) {
            ports[id] = null;
            e.close();
            if (p.consoleBacklog != null) {
                p.consoleBacklog.close();
            }
            throw new PortRequestException(ex.getMessage().contains("name") ? PortRequestException.Reason.NAME_TAKEN
                    : PortRequestException.Reason.ID_TAKEN, ex.getMessage(), ex);
        }
        if (e.connected()) {
            control.hostConnected(id); // the endpoint connected before the control machine knew the port
            p.hostReadable = true;
            p.hostWritable = true;
        }
        attachRunningQueues(p);
        p.dirty = true;
        anyTicking |= e.wantsTicks();
        LOG.log(Level.INFO, "{0}: added with endpoint {1}", p.label, e.describe());
        emit(PortEvent.PORT_ADDED, p, e.describe());
        if (e.connected()) {
            emit(PortEvent.HOST_CONNECTED, p, null);
        }
        return statusOf(p);
    }

    /** Hot-added port: the guest started all queues at driver-ok, so this id's queues may run already. */
    private void attachRunningQueues(PortRuntime p) {
        int rx = map.receiveQueue(p.config.id());
        int tx = map.transmitQueue(p.config.id());
        if (rx >= 0 && rx < queues.length && queues[rx] != null) {
            p.receive = queues[rx];
            p.receiveChain = new Chain(queues[rx].size());
            p.receiveHeld = false;
        }
        if (tx >= 0 && tx < queues.length && queues[tx] != null) {
            p.transmit = queues[tx];
            p.transmitChain = new Chain(queues[tx].size());
            p.transmitHeld = false;
        }
    }

    private RemovalReport doRemovePort(int id) {
        PortRuntime p = id >= 0 && id < ports.length ? ports[id] : null;
        if (p == null) {
            throw new PortRequestException(PortRequestException.Reason.NO_SUCH_PORT, "there is no port " + id);
        }
        boolean wasOpen = p.guestOpen;
        long[] moved = drainTransmit(p); // delivered, undelivered bytes, undelivered chains
        if (p.receiveHeld) {
            // An empty guest receive buffer stays the guest's: give it back to the ring.
            try {
                p.receive.unpop();
            } catch (IllegalStateException notDirectlyAfterPop) {
                p.receive.pushUsed(p.receiveChain.head(), 0);
                usedDirty[map.receiveQueue(id)] = true;
            }
            p.receiveHeld = false;
        }
        removing[id] = p.config;
        Endpoint e = p.endpoint;
        boolean wasConnected = e.connected() && !e.discardsOutput();
        try {
            e.close();
        } catch (RuntimeException ex) {
            LOG.log(Level.WARNING, "{0}: closing {1} failed: {2}", p.label, e.describe(), ex.toString());
        }
        if (wasConnected) {
            emit(PortEvent.HOST_DISCONNECTED, p, "port removed");
        }
        control.removePort(id); // reports guest-closed, queues PORT_REMOVE (portRemoved follows)
        ports[id] = null;
        if (p.receiveChain != null) {
            p.receiveChain.close();
        }
        if (p.transmitChain != null) {
            p.transmitChain.close();
        }
        if (p.consoleBacklog != null) {
            p.consoleBacklog.close();
        }
        if (moved[1] > 0) {
            deviceCounters.removedUndeliveredBytes.add(moved[1]);
            LOG.log(Level.WARNING, "{0}: removed with {1} bytes of guest output in {2} buffers the host did not take",
                    p.label, Long.toString(moved[1]), Long.toString(moved[2]));
        }
        LOG.log(Level.INFO, "{0}: removed on the host side ({1} bytes delivered during removal)", p.label, Long.toString(moved[0]));
        return new RemovalReport(id, p.config.name(), moved[0], moved[1], moved[2], wasOpen);
    }

    /**
     * Empties the port's transmit queue before removal (the guest would otherwise keep buffers the
     * device never completes): writes what the host endpoint takes without blocking, completes
     * the rest unsent and counts it.
     */
    private long[] drainTransmit(PortRuntime p) {
        long delivered = 0;
        long undeliveredBytes = 0;
        long undeliveredChains = 0;
        Endpoint e = p.endpoint;
        if (p.isConsole() && p.consoleBacklog != null) {
            flushConsoleBacklog(p);
            undeliveredBytes += p.consoleBacklog.size();
        }
        SplitQueue q = p.transmit;
        if (q == null) {
            return new long[] {delivered, undeliveredBytes, undeliveredChains};
        }
        int txq = map.transmitQueue(p.config.id());
        boolean discard = e.discardsOutput();
        boolean canWrite = e.connected() && e.outputFd() >= 0 && (p.isConsole() ? p.consoleBacklog.isEmpty() : true);
        Chain c = p.transmitChain;
        for (int budget = q.size() + 1; budget > 0; budget--) {
            if (!p.transmitHeld) {
                int r = q.pop(c);
                if (r == 0) {
                    break;
                }
                if (r < 0) {
                    usedDirty[txq] = true;
                    continue;
                }
                p.transmitHeld = true;
            }
            if (discard) {
                p.counters.add(PortCounters.DISCARDED_BYTES, c.remaining());
            } else {
                while (canWrite && c.remaining() > 0) {
                    long n = Posix.writev(e.outputFd(), c.iovAddress(), Math.min(c.iovCount(), IOV_MAX));
                    if (n <= 0) {
                        canWrite = false;
                        break;
                    }
                    delivered += n;
                    p.counters.add(PortCounters.BYTES_TO_HOST, n);
                    c.advance(n);
                }
                if (c.remaining() > 0) {
                    undeliveredBytes += c.remaining();
                    undeliveredChains++;
                }
            }
            q.pushUsed(c.head(), 0);
            p.transmitHeld = false;
            p.counters.add(PortCounters.CHAINS_TO_HOST, 1);
            usedDirty[txq] = true;
        }
        return new long[] {delivered, undeliveredBytes, undeliveredChains};
    }

    private PortStatus statusOf(PortRuntime p) {
        return new PortStatus(p.config.id(), p.config.name(), p.config.console(), p.endpoint.describe(),
                p.guestOpen, p.endpoint.connected(), p.transmitHeld, p.counters);
    }

    /** Lets endpoints that wait for something (a reconnect back-off) act; at most every TICK_MS. */
    private void tickEndpoints() {
        long now = System.nanoTime();
        if (now - lastTick < TICK_MS * 1_000_000L) {
            return;
        }
        lastTick = now;
        boolean ticking = false;
        for (PortRuntime p : ports) {
            if (p != null && p.endpoint.wantsTicks()) {
                ticking = true;
                p.endpoint.tick(now);
            }
        }
        anyTicking = ticking;
    }

    // ---------------------------------------------------------------- shutdown

    @Override
    public void close() {
        if (thread.isAlive()) {
            try {
                call(() -> {
                    running = false;
                    return null;
                });
            } catch (IllegalStateException e) {
                running = false;
            }
            try {
                thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        running = false;
        List<Exception> errors = new ArrayList<>();
        for (int i = 0; i < queues.length; i++) {
            try {
                doStopQueue(i);
            } catch (RuntimeException e) {
                errors.add(e);
            }
        }
        for (PortRuntime p : ports) {
            if (p != null) {
                try {
                    p.endpoint.close();
                    if (p.consoleBacklog != null) {
                        p.consoleBacklog.close();
                    }
                } catch (RuntimeException e) {
                    errors.add(e);
                }
            }
        }
        wake.closeQuietly();
        epoll.closeQuietly();
        arena.close();
        for (Exception e : errors) {
            LOG.log(Level.WARNING, "while shutting the data plane down: {0}", e.getMessage());
        }
    }
}
