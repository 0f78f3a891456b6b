package io.vportd.sys;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Owns one file descriptor and closes it exactly once, whatever thread calls {@link #close()}
 * and however often. {@link #release()} hands ownership on without closing.
 */
public final class Fd implements AutoCloseable {

    private static final VarHandle FD;

    static {
        try {
            FD = MethodHandles.lookup().findVarHandle(Fd.class, "fd", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @SuppressWarnings("unused") // accessed through FD
    private volatile int fd;

    private Fd(int fd) {
        this.fd = fd;
    }

    /**
     * Takes ownership of an open descriptor (for example one received with SCM_RIGHTS).
     *
     * @throws IllegalArgumentException when {@code fd} is negative
     */
    public static Fd adopt(int fd) {
        if (fd < 0) {
            throw new IllegalArgumentException("not a file descriptor: " + fd);
        }
        return new Fd(fd);
    }

    /** The descriptor number; -1 once closed or released. */
    public int fd() {
        return fd;
    }

    /** True until closed or released. */
    public boolean isOpen() {
        return fd >= 0;
    }

    /** Gives up ownership and returns the descriptor (the caller must close it), or -1 if none. */
    public int release() {
        return (int) FD.getAndSet(this, -1);
    }

    /**
     * Closes the descriptor if still owned. The descriptor is released even when close reports
     * an error (Linux semantics), so this never needs retrying.
     */
    @Override
    public void close() throws NativeException {
        int f = release();
        if (f >= 0) {
            int r = Io.close(f);
            if (r < 0) {
                throw new NativeException("close(" + f + ")", -r);
            }
        }
    }

    /** Closes like {@link #close()} but reports a failure as {@code -errno} instead of throwing; 0 = ok. */
    public int closeQuietly() {
        int f = release();
        return f >= 0 ? Io.close(f) : 0;
    }

    @Override
    public String toString() {
        return "Fd[" + fd + "]";
    }
}
