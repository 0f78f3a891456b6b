package io.vportd.telemetry;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.function.LongSupplier;

/**
 * A counter that several threads write (an atomic add; no lock, no allocation). Its methods
 * read like {@link java.util.concurrent.atomic.AtomicLong}'s so call sites stay short. Prefer
 * {@link Counter} where one thread writes.
 */
public final class SharedCounter implements LongSupplier {

    private static final VarHandle VALUE;

    static {
        try {
            VALUE = MethodHandles.lookup().findVarHandle(SharedCounter.class, "value", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @SuppressWarnings("unused") // accessed through VALUE
    private volatile long value;

    SharedCounter() {
    }

    /** Adds one; returns the new value. */
    public long incrementAndGet() {
        return (long) VALUE.getAndAdd(this, 1L) + 1;
    }

    /** Adds {@code n}; returns the new value. */
    public long addAndGet(long n) {
        return (long) VALUE.getAndAdd(this, n) + n;
    }

    public long get() {
        return (long) VALUE.getOpaque(this);
    }

    @Override
    public long getAsLong() {
        return get();
    }

    @Override
    public String toString() {
        return Long.toString(get());
    }
}
