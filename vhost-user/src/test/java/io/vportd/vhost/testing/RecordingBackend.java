package io.vportd.vhost.testing;

import io.vportd.vhost.MemoryTable;
import io.vportd.vhost.QueueSetup;
import io.vportd.vhost.VhostUserBackend;
import io.vportd.vring.GuestMemory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;

/**
 * A fake device that records every call as a short string ("startQueue 1", "reset", ...) and
 * keeps the latest queue setups, memory table and config bytes, for tests that check what a
 * session did. Thread-safe: the server thread calls, the test thread waits and reads.
 */
public class RecordingBackend implements VhostUserBackend {

    private final long features;
    private final int queues;
    private final byte[] config;
    private final List<String> events = new ArrayList<>();
    private final ConcurrentHashMap<Integer, QueueSetup> running = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<Integer, Integer> stopIndex = new ConcurrentHashMap<>();
    private volatile GuestMemory memory = GuestMemory.empty();
    private MemoryTable table; // guarded by this
    private volatile long ackedFeatures;

    public RecordingBackend(long features, int queues, byte[] config) {
        this.features = features;
        this.queues = queues;
        this.config = config.clone();
    }

    /** A console-like device: F_SIZE|F_MULTIPORT|VERSION_1|EVENT_IDX, 12 config bytes. */
    public static RecordingBackend console(int queues) {
        byte[] cfg = new byte[12];
        cfg[0] = 80;  // cols
        cfg[2] = 25;  // rows
        cfg[4] = (byte) (queues / 2 - 1); // max_nr_ports
        return new RecordingBackend(1L | 1L << 1 | 1L << 32 | 1L << 29, queues, cfg);
    }

    protected synchronized void record(String event) {
        events.add(event);
        notifyAll();
    }

    /** A copy of the events so far. */
    public synchronized List<String> events() {
        return new ArrayList<>(events);
    }

    public synchronized void clearEvents() {
        events.clear();
    }

    /** Waits until some recorded event matches; false on timeout. */
    public synchronized boolean await(Predicate<String> p, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (events.stream().noneMatch(p)) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            wait(Math.max(1, left / 1_000_000));
        }
        return true;
    }

    public boolean awaitEvent(String exact, Duration timeout) throws InterruptedException {
        return await(exact::equals, timeout);
    }

    /** The setup of a started queue, or null when it is not running. */
    public QueueSetup running(int index) {
        return running.get(index);
    }

    public GuestMemory memory() {
        return memory;
    }

    public long ackedFeatures() {
        return ackedFeatures;
    }

    /** What the next stopQueue(index) returns (default: the queue's firstAvailIndex). */
    public void setStopIndex(int index, int nextAvail) {
        stopIndex.put(index, nextAvail);
    }

    public synchronized byte[] config() {
        return config.clone();
    }

    @Override
    public long deviceFeatures() {
        return features;
    }

    @Override
    public int queueCount() {
        return queues;
    }

    @Override
    public int configSize() {
        return config.length;
    }

    @Override
    public void getConfig(int offset, byte[] dst) {
        synchronized (this) {
            System.arraycopy(config, offset, dst, 0, dst.length);
        }
        record("getConfig " + offset + " " + dst.length);
    }

    @Override
    public void setConfig(int offset, byte[] src) {
        synchronized (this) {
            System.arraycopy(src, 0, config, offset, src.length);
        }
        record("setConfig " + offset + " " + src.length);
    }

    @Override
    public void setFeatures(long acked) {
        ackedFeatures = acked;
        record("setFeatures 0x" + Long.toHexString(acked));
    }

    /** Takes the new table and closes the old one at once (a synchronous device). */
    @Override
    public void setMemory(MemoryTable t) {
        MemoryTable old;
        synchronized (this) {
            old = table;
            table = t;
        }
        memory = t.memory();
        if (old != null) {
            old.close();
        }
        record("setMemory " + t.memory().regionCount());
    }

    @Override
    public void startQueue(int index, QueueSetup setup) {
        if (running.putIfAbsent(index, setup) != null) {
            throw new IllegalStateException("queue " + index + " started twice");
        }
        record("startQueue " + index);
    }

    @Override
    public int stopQueue(int index) {
        QueueSetup s = running.remove(index);
        if (s == null) {
            throw new IllegalStateException("queue " + index + " stopped but not running");
        }
        record("stopQueue " + index);
        Integer next = stopIndex.remove(index);
        return next != null ? next : s.firstAvailIndex();
    }

    @Override
    public void reset() {
        running.clear();
        record("reset");
    }
}
