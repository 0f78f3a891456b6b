package io.vportd.console.portlog;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * One {@code vportd ctl log --follow} client's view of a port's live output: a bounded
 * single-producer (the data plane), single-consumer (the client's forwarding thread) byte
 * buffer. The data plane never waits for a follower: when one falls behind so far that the
 * buffer is full, it is marked {@link #overflowed()}, and its consumer ends the follow (the
 * data plane drops and counts it). A follower that lost bytes is never fed again, so what it
 * did get is always a gap-free stretch of the stream.
 */
public final class LogFollower {

    public static final int DEFAULT_CAPACITY = 256 * 1024;
    private static final VarHandle TAIL;
    private static final VarHandle HEAD;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            TAIL = l.findVarHandle(LogFollower.class, "tail", long.class);
            HEAD = l.findVarHandle(LogFollower.class, "head", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final byte[] ring;
    @SuppressWarnings("unused") private volatile long tail;
    @SuppressWarnings("unused") private volatile long head;
    private volatile boolean overflowed;
    private volatile boolean cancelled;
    private volatile Thread waiter;

    public LogFollower(int capacity) {
        this.ring = new byte[capacity];
    }

    /** Producer: keeps {@code b[off, off+len)}, or marks the follower overflowed. False when it is to be dropped. */
    public boolean offer(byte[] b, int off, int len) {
        if (cancelled || overflowed) {
            return false;
        }
        long t = (long) TAIL.getOpaque(this);
        int cap = ring.length;
        if (len > cap - (t - (long) HEAD.getAcquire(this))) {
            overflowed = true;
            wake();
            return false;
        }
        int at = (int) (t % cap);
        int first = Math.min(len, cap - at);
        System.arraycopy(b, off, ring, at, first);
        System.arraycopy(b, off + first, ring, 0, len - first);
        TAIL.setRelease(this, t + len);
        wake();
        return true;
    }

    private void wake() {
        Thread w = waiter;
        if (w != null) {
            LockSupport.unpark(w);
        }
    }

    /**
     * Consumer: copies up to {@code dst.length} buffered bytes, waiting up to {@code timeoutNanos}
     * for some. Returns bytes copied, 0 when none came in time, -1 once the follower overflowed
     * (after what it had buffered) or was cancelled.
     */
    public int read(byte[] dst, long timeoutNanos) {
        long h = (long) HEAD.getOpaque(this);
        long t = (long) TAIL.getAcquire(this);
        if (h == t) {
            if (cancelled || overflowed) {
                return -1;
            }
            waiter = Thread.currentThread();
            t = (long) TAIL.getAcquire(this);
            if (h == t && !cancelled && !overflowed) {
                LockSupport.parkNanos(this, timeoutNanos);
            }
            waiter = null;
            t = (long) TAIL.getAcquire(this);
            if (h == t) {
                return cancelled || overflowed ? -1 : 0;
            }
        }
        int cap = ring.length;
        int n = (int) Math.min(dst.length, t - h);
        int at = (int) (h % cap);
        int first = Math.min(n, cap - at);
        System.arraycopy(ring, at, dst, 0, first);
        System.arraycopy(ring, 0, dst, first, n - first);
        HEAD.setRelease(this, h + n);
        return n;
    }

    public boolean overflowed() {
        return overflowed;
    }

    /** The consumer is gone (or the port is): the producer drops this follower on its next offer. */
    public void cancel() {
        cancelled = true;
        wake();
    }

    public boolean cancelled() {
        return cancelled;
    }
}
