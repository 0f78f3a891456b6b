package io.vportd.console.portlog;

import io.vportd.telemetry.Counter;
import io.vportd.telemetry.LogLimiter;
import io.vportd.telemetry.MetricSet;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * A port's log writer: a bounded single-producer, single-consumer byte buffer the data plane
 * {@link #offer offers} guest output to, and a thread of its own that drains it into a
 * {@link LogTarget}. The data plane never waits: what does not fit is dropped, its size
 * accumulated, and the writer hands the exact count to the target at the place in the stream
 * where the bytes went missing (a marker line), once the buffer has room for the record again.
 *
 * <p>Records in the buffer: a 12-byte header ({@code int length} then {@code long value}) and,
 * for data, {@code length} bytes; {@code value} is the arrival time in epoch milliseconds.
 * {@code length == -1} is a drop record whose {@code value} is the dropped byte count.
 *
 * <p>Wake-ups: the producer publishes with a release store and unparks the writer only when it
 * saw it asleep, so no fence is paid per offer; a wake-up lost to that race costs latency, not
 * bytes, because the writer never parks longer than {@link #IDLE_PARK_NANOS}.
 */
public final class LogWriter implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("vportd.portlog");
    private static final int HEADER = 12;
    private static final long IDLE_PARK_NANOS = 50_000_000L;
    /** Buffer per port unless a test asks for another. */
    public static final int DEFAULT_CAPACITY = 1024 * 1024;

    private static final VarHandle TAIL;
    private static final VarHandle HEAD;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            TAIL = l.findVarHandle(LogWriter.class, "tail", long.class);
            HEAD = l.findVarHandle(LogWriter.class, "head", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final byte[] ring;
    private final int capacity;
    private final LogTarget target;
    private final LogLimiter writeLog = new LogLimiter(LOG);
    private final String label;
    private final Thread thread;
    private final MetricSet metrics = new MetricSet();
    private final Counter bytesWritten = metrics.counter("vportd_port_log_bytes_written_total",
            "Guest output bytes the port's log writer handed to its file or the journal.");
    private final Counter writeErrors = metrics.counter("vportd_port_log_write_errors_total",
            "Failed writes of the port's log (the bytes of a failed write are lost and counted here).");

    @SuppressWarnings("unused") private volatile long tail; // producer position (bytes ever written)
    @SuppressWarnings("unused") private volatile long head; // consumer position
    private volatile boolean sleeping;
    private volatile boolean closing;
    // Writer-only state: bytes lost to failed writes (or drops not yet marked) and the record being written.
    private long failedBytes;
    private int pendingWrite;
    // Producer-only state.
    private long pendingDrop;
    private long droppedTotal;

    public LogWriter(LogTarget target, String label, int capacity) {
        if (capacity < 4 * HEADER) {
            throw new IllegalArgumentException("capacity " + capacity);
        }
        this.target = target;
        this.label = label;
        this.capacity = capacity;
        this.ring = new byte[capacity];
        this.thread = Thread.ofPlatform().daemon().name("vportd-log-" + label.replace(' ', '-')).unstarted(this::run);
    }

    public void start() {
        thread.start();
    }

    /** This writer's own counters (written by its thread), to export with the port's labels. */
    public MetricSet metrics() {
        return metrics;
    }

    /** Bytes dropped so far because the buffer was full (producer's count). */
    public long droppedTotal() {
        return droppedTotal;
    }

    /**
     * Data-plane side: keeps {@code b[off, off+len)} for the writer, or drops it. Never blocks,
     * never allocates. Returns the bytes dropped by this call (0 or {@code len}).
     */
    public int offer(byte[] b, int off, int len, long epochMillis) {
        if (len <= 0) {
            return 0;
        }
        long t = (long) TAIL.getOpaque(this);
        long free = capacity - (t - (long) HEAD.getAcquire(this));
        long need = HEADER + len + (pendingDrop > 0 ? HEADER : 0);
        if (need > free) {
            pendingDrop += len;
            droppedTotal += len;
            return len;
        }
        if (pendingDrop > 0) {
            t = putHeader(t, -1, pendingDrop);
            pendingDrop = 0;
        }
        t = putHeader(t, len, epochMillis);
        t = put(t, b, off, len);
        TAIL.setRelease(this, t);
        if (sleeping) {
            LockSupport.unpark(thread);
        }
        return 0;
    }

    private long putHeader(long t, int len, long value) {
        byte[] h = headerScratch;
        h[0] = (byte) (len >>> 24);
        h[1] = (byte) (len >>> 16);
        h[2] = (byte) (len >>> 8);
        h[3] = (byte) len;
        for (int i = 0; i < 8; i++) {
            h[4 + i] = (byte) (value >>> (56 - 8 * i));
        }
        return put(t, h, 0, HEADER);
    }

    private final byte[] headerScratch = new byte[HEADER];
    private final byte[] readHeader = new byte[HEADER];

    private long put(long t, byte[] b, int off, int len) {
        int at = (int) (t % capacity);
        int first = Math.min(len, capacity - at);
        System.arraycopy(b, off, ring, at, first);
        System.arraycopy(b, off + first, ring, 0, len - first);
        return t + len;
    }

    private void get(long h, byte[] dst, int off, int len) {
        int at = (int) (h % capacity);
        int first = Math.min(len, capacity - at);
        System.arraycopy(ring, at, dst, off, first);
        System.arraycopy(ring, 0, dst, off + first, len - first);
    }

    /** Drains what is buffered now; true when something was written. Writer thread (or a test). */
    boolean drainOnce(byte[] scratch) {
        long h = (long) HEAD.getOpaque(this);
        long t = (long) TAIL.getAcquire(this);
        if (h == t) {
            return false;
        }
        while (h != t) {
            get(h, readHeader, 0, HEADER);
            int len = ((readHeader[0] & 0xff) << 24) | ((readHeader[1] & 0xff) << 16) | ((readHeader[2] & 0xff) << 8)
                    | (readHeader[3] & 0xff);
            long value = 0;
            for (int i = 0; i < 8; i++) {
                value = (value << 8) | (readHeader[4 + i] & 0xff);
            }
            h += HEADER;
            try {
                if (len < 0) {
                    failedBytes += value;
                } else {
                    get(h, scratch, 0, len);
                    h += len;
                    pendingWrite = len; // lost if the marker or the write fails
                }
                if (failedBytes > 0) {
                    target.dropped(failedBytes, System.currentTimeMillis());
                    failedBytes = 0;
                }
                if (len >= 0) {
                    target.write(scratch, 0, len, value);
                    pendingWrite = 0;
                    bytesWritten.add(len);
                }
            } catch (IOException | RuntimeException e) {
                failedBytes += pendingWrite; // lost with the failed write: reported by the next marker
                pendingWrite = 0;
                writeErrors.increment();
                writeLog.log(Level.WARNING, "{0}: writing its log to {1} failed: {2}", label, target.describe(),
                        e.getMessage());
            }
            HEAD.setRelease(this, h);
        }
        return true;
    }

    private void run() {
        byte[] scratch = new byte[capacity];
        while (true) {
            if (drainOnce(scratch)) {
                continue;
            }
            try {
                target.idle(System.currentTimeMillis());
            } catch (IOException | RuntimeException e) {
                writeErrors.increment();
                writeLog.log(Level.WARNING, "{0}: writing its log to {1} failed: {2}", label, target.describe(),
                        e.getMessage());
            }
            if (closing) {
                if ((long) HEAD.getOpaque(this) == (long) TAIL.getAcquire(this)) {
                    closeTarget();
                    return;
                }
                continue;
            }
            sleeping = true;
            if ((long) HEAD.getOpaque(this) == (long) TAIL.getAcquire(this) && !closing) {
                LockSupport.parkNanos(this, IDLE_PARK_NANOS);
            }
            sleeping = false;
        }
    }

    /**
     * Asks the writer to stop once it has written what is buffered; it then closes its target.
     * Never blocks, so the data plane may call it (it is the producer: a drop not yet recorded is
     * recorded now, if there is room, so the marker is not lost).
     */
    @Override
    public void close() {
        if (pendingDrop > 0) {
            long t = (long) TAIL.getOpaque(this);
            if (capacity - (t - (long) HEAD.getAcquire(this)) >= HEADER) {
                TAIL.setRelease(this, putHeader(t, -1, pendingDrop));
                pendingDrop = 0;
            }
        }
        closing = true;
        if (thread.isAlive()) {
            LockSupport.unpark(thread);
        } else {
            closeTarget();
        }
    }

    /**
     * Waits up to {@code millis} until everything offered so far has been handed to the target (a
     * live hand-over: the next process appends to the same log). True when it has.
     */
    public boolean awaitDrained(long millis) {
        long deadline = System.nanoTime() + millis * 1_000_000L;
        while ((long) HEAD.getAcquire(this) != (long) TAIL.getAcquire(this)) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            LockSupport.unpark(thread);
            LockSupport.parkNanos(500_000L);
        }
        return true;
    }

    /** Waits up to {@code millis} for the writer thread to finish after {@link #close()}; true when it has. */
    public boolean awaitClosed(long millis) throws InterruptedException {
        if (thread.getState() == Thread.State.NEW) {
            return true; // never started: close() closed the target itself
        }
        return thread.join(java.time.Duration.ofMillis(millis));
    }

    private void closeTarget() {
        try {
            target.close();
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "{0}: closing its log {1} failed: {2}", label, target.describe(), e.getMessage());
        }
    }
}
