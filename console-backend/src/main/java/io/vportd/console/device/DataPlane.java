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
    private final Thread thread;

    private GuestMemory memory = GuestMemory.empty();
    private Chain controlTxChain;
    private Chain controlRxChain;
    private boolean controlRxHeld;
    private boolean controlDirty;
    private boolean deviceReadySeen;
    private volatile boolean running = true;

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
        this.control = new ControlMachine(map.maxPorts(), this);
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
                int n = Posix.epollWait(epoll.fd(), events, MAX_EVENTS, anyDirty() ? 0 : txLingerDeadline != 0 ? 1 : 1000);
                if (n < 0 && n != -Errno.EINTR) {
                    LOG.log(Level.ERROR, "epoll_wait failed: {0}", Errno.describe(-n));
                    break;
                }
                for (int i = 0; i < n; i++) {
                    dispatch(Posix.epollEventData(events, i), Posix.epollEventMask(events, i));
                }
                runCommands();
                service();
                followTerminalSizes();
            }
        } catch (Throwable t) {
            LOG.log(Level.ERROR, "data plane stopped by an unexpected error", t);
        } finally {
            running = false;
            runCommands(); // fail nobody silently: commands that raced the stop still get an answer
        }
    }

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

    /** Set when the control receive queue had no buffer last time; cleared by its kick. */
    private boolean controlRxStalled;

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
                deviceCounters.controlTruncated++;
                LOG.log(Level.WARNING, "control message of {0} bytes truncated to the guest buffer of {1}", len, wrote);
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
                        LOG.log(Level.WARNING, "{0}: writing to {1} failed: {2}; guest data is held for the next host peer",
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
                        LOG.log(Level.WARNING, "{0}: console write to {1} failed: {2}", p.label, e.describe(),
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
                    long before = p.consoleBacklog.dropped();
                    p.consoleBacklog.append(copyBuffer, 0, got);
                    p.counters.add(PortCounters.CONSOLE_DROPPED_BYTES, p.consoleBacklog.dropped() - before);
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
                    LOG.log(Level.WARNING, "{0}: reading from {1} failed: {2}", p.label, e.describe(),
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
    }

    // ---------------------------------------------------------------- ControlListener

    @Override
    public void guestOpened(int id) {
        PortRuntime p = ports[id];
        if (p != null) {
            p.guestOpen = true;
            p.dirty = true;
            LOG.log(Level.INFO, "{0}: guest opened the port", p.label);
        }
    }

    @Override
    public void guestClosed(int id) {
        PortRuntime p = ports[id];
        if (p != null) {
            p.guestOpen = false;
            LOG.log(Level.INFO, "{0}: guest closed the port", p.label);
        }
    }

    @Override
    public void portReady(int id) {
        PortRuntime p = ports[id];
        LOG.log(Level.DEBUG, "{0}: guest reports the port ready", p == null ? "port " + id : p.label);
    }

    @Override
    public void portFailed(int id, String why) {
        PortRuntime p = ports[id];
        LOG.log(Level.WARNING, "{0}: guest failed to set up the port: {1}", p == null ? "port " + id : p.label, why);
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
        QueueStats stats = new QueueStats();
        SplitQueue q = new SplitQueue(index, s.size(), s.desc(), s.avail(), s.used(), s.eventIdx(), dir, stats);
        q.setMemory(memory);
        q.setNextAvail(s.firstAvailIndex());
        int r = Posix.epollCtl(epoll.fd(), Posix.EPOLL_CTL_ADD, s.kickFd(), Posix.EPOLLIN, token(KIND_KICK, index, 0));
        if (r < 0) {
            throw new IllegalStateException("cannot watch the kick eventfd of queue " + index + ": " + Errno.describe(-r));
        }
        queues[index] = q;
        queueStats[index] = stats;
        kickFds[index] = s.kickFd();
        callFds[index] = s.callFd();
        int port = map.portOf(index);
        if (port == QueueMap.CONTROL) {
            if (index == QueueMap.CONTROL_TX) {
                controlTxChain = new Chain(s.size());
                if (s.firstAvailIndex() != 0 && !deviceReadySeen) {
                    // A frontend re-attached us to a guest whose driver is long past DEVICE_READY
                    // and will never send it again: rebuild the port state as if it had.
                    LOG.log(Level.INFO, "control queue resumes at {0}: the guest driver is already running; re-announcing ports",
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
                LOG.log(Level.WARNING, "{0}: held guest buffer left guest memory on a memory table change; completing it empty",
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
                long before = p.consoleBacklog.dropped();
                p.consoleBacklog.append(new byte[] {(byte) character}, 0, 1);
                p.counters.add(PortCounters.CONSOLE_DROPPED_BYTES, p.consoleBacklog.dropped() - before);
                p.dirty = true;
                deviceCounters.emergencyWrites++;
                flushConsoleBacklog(p);
                return;
            }
        }
        deviceCounters.emergencyWritesDropped++;
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
