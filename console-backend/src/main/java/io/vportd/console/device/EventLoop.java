package io.vportd.console.device;

import io.vportd.sys.Epoll;
import io.vportd.sys.Errno;
import io.vportd.sys.EventFd;
import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Consumer;

/**
 * One thread that runs the data planes of several devices (a daemon of many devices, issue 13),
 * instead of a thread each. Each data plane keeps its own epoll set; the loop watches those sets
 * in one epoll set of its own (an epoll descriptor is readable while its set has events), and
 * gives a data plane a turn when its set is ready or its own timer (completions lingering,
 * endpoint ticks) is due. A turn is what one pass of a data plane's own loop does, bounded per
 * port by the pump's budget, so devices take turns: a busy device cannot starve another on the
 * same loop. A data plane that fails is detached alone; the others go on.
 *
 * <p>A wake-up costs the loop what is ready, not what is attached: the ready data planes are
 * queued as their events come, looked up by token in a table, and the loop walks all its data
 * planes only when the earliest timer it knows of is due (idle devices' timers are about a second
 * apart). The walk at every wake-up it replaces grew with the devices on the loop; beside 63 idle
 * devices its cost was below what the device-limit bench can see (docs/multi-device.md).
 */
public final class EventLoop implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("vportd.device");
    private static final int MAX_EVENTS = 64;
    private static final long WAKE = 0;

    /** One attached data plane. Loop thread only, except for creation. */
    private static final class Slot {
        final DataPlane dataPlane;
        /** Its index in {@link #byToken}, and the epoll data of its set. */
        final int token;
        /** The data plane's epoll set this loop watches now (its own, or its frozen one). */
        int watched;
        /** In {@link #ready} (for a turn at the next pass). */
        boolean ready;
        long dueAt;

        Slot(DataPlane dataPlane, int token) {
            this.dataPlane = dataPlane;
            this.token = token;
        }
    }

    private final String name;
    private final Consumer<String> tagger;
    private final Fd epoll;
    private final Fd wake;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment events;
    private final Thread thread;
    private final ConcurrentLinkedQueue<DataPlane> attaching = new ConcurrentLinkedQueue<>();
    private final List<Slot> slots = new ArrayList<>(); // loop thread only, as the fields below
    /** Slots by token (0 is the loop's own wake-up eventfd); a detached slot's token is reused. */
    private Slot[] byToken = new Slot[8];
    /** Slots queued for a turn, in the order they became ready. */
    private Slot[] ready = new Slot[8];
    private int readyCount;
    /** No slot's timer is due before this (it may be earlier than any: then a walk finds none due). */
    private long earliestDue = System.nanoTime();
    private final java.util.concurrent.atomic.AtomicInteger attached = new java.util.concurrent.atomic.AtomicInteger();
    private volatile boolean closed;
    /** Returns from epoll_wait so far (written by the loop thread alone, without a fence). */
    private final java.util.concurrent.atomic.AtomicLong wakeups = new java.util.concurrent.atomic.AtomicLong();
    /** Data planes looked at in {@link #turns} so far (for tests; loop thread writes, no fence). */
    private final java.util.concurrent.atomic.AtomicLong visits = new java.util.concurrent.atomic.AtomicLong();

    /**
     * Starts a loop. {@code tagger} is told the device tag of each data plane before its turn
     * (and null after), so that log lines name their device.
     */
    public EventLoop(String name, Consumer<String> tagger) throws NativeException {
        this.name = name;
        this.tagger = tagger == null ? t -> { } : tagger;
        this.epoll = Epoll.create();
        this.wake = EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC);
        int r = Epoll.ctl(epoll.fd(), Epoll.EPOLL_CTL_ADD, wake.fd(), Epoll.EPOLLIN, WAKE);
        if (r < 0) {
            epoll.closeQuietly();
            wake.closeQuietly();
            throw new NativeException("epoll_ctl(ADD loop wake eventfd)", -r);
        }
        this.events = arena.allocate((long) Epoll.EPOLL_EVENT_SIZE * MAX_EVENTS, 8);
        this.thread = Thread.ofPlatform().name(name).daemon(true).unstarted(this::run);
        thread.start();
    }

    /** The loop's thread: the data-plane thread of every data plane attached to it. */
    Thread thread() {
        return thread;
    }

    /** Data planes attached now (for choosing the least loaded loop). */
    public int attached() {
        return attached.get();
    }

    /** How many times the loop has woken so far (each return from epoll_wait). */
    long wakeups() {
        return wakeups.get();
    }

    /** How many data planes the loop has looked at so far to give turns (queued ones and walked ones). */
    long visits() {
        return visits.get();
    }

    /** Hands {@code dp} to this loop; it gets its first turn at once. */
    void attach(DataPlane dp) {
        attached.incrementAndGet();
        attaching.add(dp);
        EventFd.wake(wake.fd());
    }

    private void run() {
        try {
            while (!closed) {
                int n = Epoll.poll(epoll.fd(), events, MAX_EVENTS, timeoutMillis());
                wakeups.lazySet(wakeups.get() + 1);
                if (n < 0 && n != -Errno.EINTR) {
                    LOG.log(Level.ERROR, "{0}: epoll_wait failed: {1}", name, Errno.describe(-n));
                    break;
                }
                for (int i = 0; i < n; i++) {
                    long token = Epoll.eventData(events, i);
                    if (token == WAKE) {
                        EventFd.drain(wake.fd());
                        takeNew();
                    } else if (token > 0 && token < byToken.length && byToken[(int) token] != null) {
                        queue(byToken[(int) token]);
                    }
                }
                turns();
            }
        } catch (Throwable t) {
            LOG.log(Level.ERROR, name + ": stopped by an unexpected error; its devices stop", t);
        } finally {
            // Whatever ended the loop ends its data planes (each says so to its device's owner).
            for (Slot s : slots) {
                s.dataPlane.stoppedOnLoop();
            }
            slots.clear();
            DataPlane dp;
            while ((dp = attaching.poll()) != null) {
                dp.stoppedOnLoop();
            }
        }
    }

    private void takeNew() throws NativeException {
        DataPlane dp;
        while ((dp = attaching.poll()) != null) {
            Slot s = new Slot(dp, freeToken());
            s.watched = dp.epollFd(); // the frozen set already, for a device rebuilt from a hand-over
            int r = Epoll.ctl(epoll.fd(), Epoll.EPOLL_CTL_ADD, s.watched, Epoll.EPOLLIN, s.token);
            if (r < 0) {
                LOG.log(Level.ERROR, "{0}: cannot watch a data plane: {1}", name, Errno.describe(-r));
                attached.decrementAndGet();
                dp.stoppedOnLoop();
                continue;
            }
            byToken[s.token] = s;
            slots.add(s);
            if (ready.length < slots.size()) {
                ready = java.util.Arrays.copyOf(ready, 2 * slots.size());
            }
            queue(s); // a first turn at once
        }
    }

    /** The lowest token no slot holds (never 0, the wake-up eventfd's). */
    private int freeToken() {
        for (int t = 1; t < byToken.length; t++) {
            if (byToken[t] == null) {
                return t;
            }
        }
        int t = byToken.length;
        byToken = java.util.Arrays.copyOf(byToken, 2 * t);
        return t;
    }

    /** Queues {@code s} for a turn at the next pass, once. */
    private void queue(Slot s) {
        if (!s.ready) {
            s.ready = true;
            ready[readyCount++] = s;
        }
    }

    /** How long the loop may sleep: not at all with a data plane queued, else until the earliest timer. */
    private int timeoutMillis() {
        if (readyCount > 0) {
            return 0;
        }
        long wait = (earliestDue - System.nanoTime() + 999_999) / 1_000_000;
        return (int) Math.max(0, Math.min(1000, wait));
    }

    /**
     * One turn for each queued data plane, in the order they became ready, then, once the earliest
     * timer is due, for each data plane whose timer is due (a walk of all, which also finds the
     * next earliest timer). The failed ones are detached. A data plane queued again during its
     * turn (thawed) has its turn at the next pass.
     */
    private void turns() {
        int n = readyCount;
        long looked = n;
        for (int i = 0; i < n; i++) {
            Slot s = ready[i];
            s.ready = false;
            if (!turn(s)) {
                slots.remove(s);
            }
        }
        System.arraycopy(ready, n, ready, 0, readyCount - n); // those queued during this pass go first
        java.util.Arrays.fill(ready, readyCount - n, readyCount, null);
        readyCount -= n;
        long now = System.nanoTime();
        if (now - earliestDue < 0) {
            visits.lazySet(visits.get() + looked);
            return;
        }
        looked += slots.size();
        visits.lazySet(visits.get() + looked);
        long earliest = now + 1_000_000_000L;
        for (int i = 0; i < slots.size(); i++) {
            Slot s = slots.get(i);
            if (!s.ready && now - s.dueAt >= 0 && !turn(s)) {
                slots.remove(i--);
                continue;
            }
            if (s.dueAt - earliest < 0) {
                earliest = s.dueAt;
            }
        }
        earliestDue = earliest;
    }

    /** One turn of {@code s}; false: it failed or stopped, is detached, and the caller drops it from {@link #slots}. */
    private boolean turn(Slot s) {
        tagger.accept(s.dataPlane.tag());
        boolean alive;
        try {
            alive = s.dataPlane.turnOnLoop();
        } finally {
            tagger.accept(null);
        }
        if (alive) {
            alive = rewatch(s);
        }
        if (alive) {
            int wait = s.dataPlane.nextWaitMillis();
            long now = System.nanoTime();
            if (wait == 0) { // more to do at once (its budget ran out): queued, no timer to walk for
                s.dueAt = now + 1_000_000_000L;
                queue(s);
            } else {
                s.dueAt = now + wait * 1_000_000L;
                if (s.dueAt - earliestDue < 0) {
                    earliestDue = s.dueAt;
                }
            }
            return true;
        }
        // Not queued: only a successful rewatch or a wait of 0 queues a data plane.
        Epoll.ctl(epoll.fd(), Epoll.EPOLL_CTL_DEL, s.watched, 0, 0);
        byToken[s.token] = null;
        attached.decrementAndGet();
        s.dataPlane.detachedFromLoop();
        return false;
    }

    /**
     * After a turn: a data plane that froze (a hand-over) or thawed has another set to be watched.
     * A frozen data plane reads nothing of its own set, so while frozen the loop watches its
     * frozen set (its wake-up eventfd alone): watching the other, which stays ready, would turn
     * the loop over and over until the thaw. What came meanwhile waits in the set it left.
     *
     * @return false: the new set cannot be watched (the data plane is detached as failed)
     */
    private boolean rewatch(Slot s) {
        int want = s.dataPlane.epollFd();
        if (want == s.watched) {
            return true;
        }
        Epoll.ctl(epoll.fd(), Epoll.EPOLL_CTL_DEL, s.watched, 0, 0);
        s.watched = want;
        int r = Epoll.ctl(epoll.fd(), Epoll.EPOLL_CTL_ADD, want, Epoll.EPOLLIN, s.token);
        if (r < 0) {
            LOG.log(Level.ERROR, "{0}: cannot watch a data plane after it froze or thawed: {1}; it stops", name,
                    Errno.describe(-r));
            s.dataPlane.failedOnLoop(); // turns() detaches it
            return false;
        }
        queue(s); // thawed: a turn at once for what waited in its set
        return true;
    }

    /** Stops the loop (its data planes must have been closed first). */
    @Override
    public void close() {
        closed = true;
        EventFd.wake(wake.fd());
        try {
            thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!thread.isAlive()) {
            wake.closeQuietly();
            epoll.closeQuietly();
            arena.close();
        }
    }

    /** A small fixed set of loops; each device goes to the one with the fewest. */
    public static final class Group implements AutoCloseable {
        private final List<EventLoop> loops = new ArrayList<>();

        /** {@code count} loops named vportd-loop-N. */
        public Group(int count, Consumer<String> tagger) throws NativeException {
            if (count < 1) {
                throw new IllegalArgumentException("at least one event loop, got " + count);
            }
            try {
                for (int i = 0; i < count; i++) {
                    loops.add(new EventLoop("vportd-loop-" + i, tagger));
                }
            } catch (NativeException | RuntimeException e) {
                close();
                throw e;
            }
        }

        /** The default count: one per CPU, at most 8. */
        public static int defaultCount() {
            return Math.max(1, Math.min(8, Runtime.getRuntime().availableProcessors()));
        }

        public int size() {
            return loops.size();
        }

        /** The loop with the fewest data planes. */
        public synchronized EventLoop leastLoaded() {
            EventLoop best = loops.get(0);
            for (EventLoop l : loops) {
                if (l.attached() < best.attached()) {
                    best = l;
                }
            }
            return best;
        }

        @Override
        public void close() {
            for (EventLoop l : loops) {
                l.close();
            }
        }
    }
}
