package io.vportd.console.endpoint;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.Io;
import io.vportd.sys.Sockets;
import io.vportd.sys.UnixSockets;
import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import io.vportd.telemetry.MetricSet;
import io.vportd.telemetry.SharedCounter;

/**
 * Keeps the data plane off descriptors that can block: a regular file on a stalled or full disk,
 * a terminal, standard output piped to a reader that stopped reading. The data plane gets the
 * near end of a non-blocking {@code socketpair(AF_UNIX)} and treats it like any socket peer
 * (EAGAIN holds guest buffers or fills the console backlog, EPOLLOUT resumes); one pump thread
 * moves the bytes between the far end and the real descriptor with ordinary blocking calls.
 *
 * <p>Bounded by construction: what waits is the socket pair's buffer plus one {@link #CHUNK}.
 * A sink that fails (ENOSPC, EIO) is retried with a doubling back-off, the same bytes in the
 * same order, so nothing is lost or reordered and the port resumes by itself once the disk has
 * room again; each failure is counted and logged at most once per back-off step.
 */
public final class BlockingFdBridge implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("vportd.endpoint");

    /** Bytes one pump call moves at most. */
    static final int CHUNK = 64 * 1024;
    static final long MIN_RETRY_MS = 50;
    static final long MAX_RETRY_MS = 5000;
    /** After close, how long a failing sink is still retried before its last bytes are given up. */
    static final long CLOSE_GRACE_MS = 2000;

    /** Where the pump writes (a real descriptor in production; a test may fail on purpose). */
    interface Sink {
        /** Writes up to {@code len} bytes at native address {@code addr}: bytes written, or -errno. */
        long write(long addr, long len);
    }

    /** Output pumps still running, so an orderly exit can let them finish writing. */
    private static final java.util.Set<Thread> OUTPUT_PUMPS = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private final String label;
    private final String what;
    private final Fd near;
    private final Fd far;
    private final Thread pump;
    private final SharedCounter errors;
    private final SharedCounter moved;
    private final SharedCounter abandoned;
    private volatile boolean closing;
    private volatile long closedAt;
    /** Output pumps: wakes the pump out of its wait so it can stop for a live hand-over. */
    private Fd wakeFd;
    private Fd waitSet;
    /** A live hand-over wants the pump stopped between two writes. */
    private volatile boolean holdForHandover;
    /** Completed by the pump once it stopped (between writes) for a hand-over. */
    private volatile java.util.concurrent.CountDownLatch stoppedForHandover;

    private BlockingFdBridge(String label, String what, Fd near, Fd far, Runnable body, String threadName,
            MetricSet metrics, String direction) {
        this.errors = metrics.shared("vportd_port_pump_errors_total",
                "Failed writes to a file or standard output (each retried), or failed reads of standard input.",
                "direction", direction);
        this.moved = metrics.shared("vportd_port_pump_bytes_total",
                "Bytes a pump thread moved between a blocking host descriptor and the data plane.", "direction", direction);
        this.abandoned = metrics.shared("vportd_port_pump_abandoned_bytes_total",
                "Guest output given up because its sink still failed when the port closed.", "direction", direction);
        this.label = label;
        this.what = what;
        this.near = near;
        this.far = far;
        this.pump = Thread.ofPlatform().daemon().name(threadName).stackSize(256 * 1024).unstarted(body);
    }

    /**
     * Guest output written to {@code sink} through a pump thread. The pump owns {@code owned}
     * (the sink's descriptor, or null when it stays the caller's, like standard output) and closes
     * it when it ends, so the descriptor number is never reused under a write still in flight.
     */
    static BlockingFdBridge toSink(Fd owned, Sink sink, String label, String what, MetricSet metrics)
            throws NativeException {
        Fd[] pair = UnixSockets.pair();
        Io.setNonBlocking(pair[0].fd(), true);
        return sinkBridge(pair[0], pair[1], owned, sink, label, what, metrics);
    }

    /**
     * An output bridge rebuilt around the socket pair a previous process handed over (whatever it
     * held is still in it) and the sink's descriptor {@code owned}.
     */
    static BlockingFdBridge adoptSink(Fd near, Fd far, Fd owned, Sink sink, String label, String what, MetricSet metrics)
            throws NativeException {
        return sinkBridge(near, far, owned, sink, label, what, metrics);
    }

    private static BlockingFdBridge sinkBridge(Fd near, Fd far, Fd owned, Sink sink, String label, String what,
                                               MetricSet metrics) throws NativeException {
        BlockingFdBridge[] self = new BlockingFdBridge[1];
        self[0] = new BlockingFdBridge(label, what, near, far, () -> {
            try {
                self[0].pumpOut(sink);
            } finally {
                if (owned != null) {
                    owned.closeQuietly();
                }
                OUTPUT_PUMPS.remove(Thread.currentThread());
            }
        }, "vportd-sink-" + label.replace(' ', '-'), metrics, "to-host");
        try {
            self[0].wakeFd = io.vportd.sys.EventFd.create(0, io.vportd.sys.EventFd.EFD_NONBLOCK | io.vportd.sys.EventFd.EFD_CLOEXEC);
            self[0].waitSet = io.vportd.sys.Epoll.create();
            watchIn(self[0].waitSet, far.fd(), 1);
            watchIn(self[0].waitSet, self[0].wakeFd.fd(), 2);
        } catch (NativeException | RuntimeException e) {
            self[0].closeWaitSet();
            near.closeQuietly();
            far.closeQuietly();
            throw e;
        }
        OUTPUT_PUMPS.add(self[0].pump);
        self[0].pump.start();
        return self[0];
    }

    private static void watchIn(Fd epoll, int fd, long token) throws NativeException {
        int r = io.vportd.sys.Epoll.ctl(epoll.fd(), io.vportd.sys.Epoll.EPOLL_CTL_ADD, fd, io.vportd.sys.Epoll.EPOLLIN, token);
        if (r < 0) {
            throw new NativeException("epoll_ctl(bridge)", -r);
        }
    }

    private void closeWaitSet() {
        if (waitSet != null) {
            waitSet.closeQuietly();
        }
        if (wakeFd != null) {
            wakeFd.closeQuietly();
        }
    }

    // ---- live hand-over (output bridges) -------------------------------------------------

    /**
     * Stops the pump between two writes (never inside one) so that the socket pair, with whatever
     * it still holds, can go to the next process. False when the pump did not stop within
     * {@code ms} (a stalled sink): the hand-over must then be refused.
     */
    boolean holdForHandover(long ms) throws InterruptedException {
        java.util.concurrent.CountDownLatch stopped = new java.util.concurrent.CountDownLatch(1);
        stoppedForHandover = stopped;
        holdForHandover = true;
        io.vportd.sys.EventFd.wake(wakeFd.fd());
        if (stopped.await(ms, java.util.concurrent.TimeUnit.MILLISECONDS)) {
            return true;
        }
        releaseHandoverHold();
        return false;
    }

    /** True while a hand-over holds the pump (it stopped between two writes). */
    boolean heldForHandover() {
        java.util.concurrent.CountDownLatch stopped = stoppedForHandover;
        return holdForHandover && stopped != null && stopped.getCount() == 0;
    }

    /** The hand-over did not happen: the pump goes on. */
    void releaseHandoverHold() {
        holdForHandover = false;
        io.vportd.sys.EventFd.wake(wakeFd.fd());
    }

    /** The socket pair's far end (the pump's), for a hand-over. */
    int farFd() {
        return far.fd();
    }

    /** Waits until the far end is readable (true) or a hand-over hold is asked for (false). */
    private boolean awaitInput(java.lang.foreign.MemorySegment events) {
        while (true) {
            if (holdForHandover) {
                return false;
            }
            int n = io.vportd.sys.Epoll.poll(waitSet.fd(), events, 2, -1);
            boolean readable = false;
            for (int i = 0; i < n; i++) {
                if (io.vportd.sys.Epoll.eventData(events, i) == 2) {
                    io.vportd.sys.EventFd.drain(wakeFd.fd());
                } else {
                    readable = true;
                }
            }
            if (n < 0 && n != -Errno.EINTR) {
                return true; // let the read report the broken bridge
            }
            if (readable && !holdForHandover) {
                return true;
            }
        }
    }

    /**
     * Parks the pump while a hand-over holds it. When the hand-over happens the process exits with
     * the pump parked here, so nothing of the pair or the sink is read, written or closed again.
     */
    private void parkForHandover() {
        java.util.concurrent.CountDownLatch stopped = stoppedForHandover;
        if (stopped != null) {
            stopped.countDown();
        }
        while (holdForHandover) {
            java.util.concurrent.locks.LockSupport.parkNanos(10_000_000L);
        }
    }

    /** Host input read from {@code sourceFd} (which stays the caller's, blocking as it is). */
    static BlockingFdBridge fromSource(int sourceFd, String label, String what, MetricSet metrics)
            throws NativeException {
        Fd[] pair = UnixSockets.pair();
        Io.setNonBlocking(pair[0].fd(), true);
        Sockets.shutdown(pair[0].fd(), Sockets.SHUT_WR); // the data plane only reads its end
        BlockingFdBridge[] self = new BlockingFdBridge[1];
        self[0] = new BlockingFdBridge(label, what, pair[0], pair[1], () -> self[0].pumpIn(sourceFd),
                "vportd-source-" + label.replace(' ', '-'), metrics, "to-guest");
        self[0].pump.start();
        return self[0];
    }

    /** The data plane's end: non-blocking, watched like a socket peer. */
    int fd() {
        return near.fd();
    }

    /** Failed writes to the sink (or reads from the source) so far. */
    long errors() {
        return errors.get();
    }

    /** Bytes the pump has moved to the sink (or from the source). */
    long moved() {
        return moved.get();
    }

    /** Bytes given up because the sink still failed when the port closed. */
    long abandoned() {
        return abandoned.get();
    }

    private void pumpOut(Sink sink) {
        try (Arena arena = Arena.ofConfined()) {
            long buf = arena.allocate(CHUNK, 8).address();
            java.lang.foreign.MemorySegment events = io.vportd.sys.Epoll.allocateEvents(arena, 2);
            while (true) {
                if (!awaitInput(events)) {
                    parkForHandover();
                    continue;
                }
                long n = Io.read(far.fd(), buf, CHUNK);
                if (n == 0) {
                    return; // the data plane closed its end and everything before it was written
                }
                if (n < 0) {
                    LOG.log(Level.WARNING, "{0}: the bridge to {1} broke: {2}", label, what, Errno.describe((int) -n));
                    return;
                }
                if (!writeAll(sink, buf, n)) {
                    return;
                }
            }
        } finally {
            closeWaitSet();
            far.closeQuietly();
        }
    }

    /** Writes {@code n} bytes, retrying failures with back-off; false when given up after close. */
    private boolean writeAll(Sink sink, long buf, long n) {
        long off = 0;
        long retryMs = MIN_RETRY_MS;
        while (off < n) {
            long w = sink.write(buf + off, n - off);
            if (w > 0) {
                off += w;
                moved.addAndGet(w);
                retryMs = MIN_RETRY_MS;
                continue;
            }
            long failures = errors.incrementAndGet();
            if (retryMs == MIN_RETRY_MS) {
                LOG.log(Level.WARNING, "{0}: writing to {1} failed: {2}; guest output waits and is retried ({3} failures so far)",
                        label, what, w == 0 ? "wrote nothing" : Errno.describe((int) -w), Long.toString(failures));
            }
            if (closing && System.nanoTime() - closedAt > CLOSE_GRACE_MS * 1_000_000L) {
                long lost = n - off + drainRest();
                abandoned.addAndGet(lost);
                LOG.log(Level.WARNING, "{0}: closed while {1} still fails; {2} bytes of guest output were not written",
                        label, what, Long.toString(lost));
                return false;
            }
            sleepMs(retryMs);
            retryMs = Math.min(MAX_RETRY_MS, retryMs * 2);
        }
        return true;
    }

    /** Counts what is still in the pair after giving up (the data plane's end is closed by then). */
    private long drainRest() {
        long total = 0;
        try (Arena arena = Arena.ofConfined()) {
            long buf = arena.allocate(CHUNK, 8).address();
            Io.setNonBlocking(far.fd(), true);
            long n;
            while ((n = Io.read(far.fd(), buf, CHUNK)) > 0) {
                total += n;
            }
        } catch (NativeException e) {
            LOG.log(Level.DEBUG, "{0}: cannot count the rest: {1}", label, e.getMessage());
        }
        return total;
    }

    private void pumpIn(int sourceFd) {
        try (Arena arena = Arena.ofConfined()) {
            long buf = arena.allocate(CHUNK, 8).address();
            while (!closing) {
                long n = Io.read(sourceFd, buf, CHUNK);
                if (n <= 0) {
                    if (n < 0) {
                        errors.incrementAndGet();
                        LOG.log(Level.WARNING, "{0}: reading {1} failed: {2}", label, what, Errno.describe((int) -n));
                    }
                    return; // end of input: the data plane reads end of file on its end
                }
                for (long off = 0; off < n; ) {
                    long w = Io.write(far.fd(), buf + off, n - off);
                    if (w <= 0) {
                        return; // the data plane closed its end
                    }
                    off += w;
                }
                moved.addAndGet(n);
            }
        } finally {
            far.closeQuietly();
        }
    }

    private static void sleepMs(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Closes the data plane's end. An output pump writes what is already in the pair and then
     * ends (a failing sink is given up after {@link #CLOSE_GRACE_MS}); nobody waits for it here.
     */
    @Override
    public void close() {
        closing = true;
        closedAt = System.nanoTime();
        near.closeQuietly();
    }

    /**
     * At an orderly exit, after the endpoints are closed: waits up to {@code ms} in all for the
     * output pumps to write what they still hold (guest output a file or stdout has not taken yet).
     */
    public static void awaitOutputPumps(long ms) {
        long deadline = System.nanoTime() + ms * 1_000_000L;
        for (Thread t : OUTPUT_PUMPS) {
            long left = (deadline - System.nanoTime()) / 1_000_000L;
            if (left <= 0) {
                return;
            }
            try {
                t.join(left);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** Waits up to {@code ms} for the pump to finish (tests, orderly shutdown). */
    boolean awaitPump(long ms) throws InterruptedException {
        pump.join(ms);
        return !pump.isAlive();
    }
}
