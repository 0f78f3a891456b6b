package io.vportd.telemetry;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.function.LongSupplier;

/**
 * A counter with exactly one writing thread; any thread may read it. The writer stores, with
 * opaque semantics, a value it computed from its own last store: no lock, no fence, no
 * allocation, and a reader never sees a torn value and eventually sees every update. Where
 * several threads write, use {@link SharedCounter}. Create counters through a {@link MetricSet}
 * so that each one has a metric name and reaches the exposition.
 */
public final class Counter implements LongSupplier {

    private static final VarHandle VALUE;

    static {
        try {
            VALUE = MethodHandles.lookup().findVarHandle(Counter.class, "value", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private long value;

    Counter() {
    }

    /** Adds {@code n} (may be negative, e.g. to take back a count). Writer thread only. */
    public void add(long n) {
        VALUE.setOpaque(this, value + n);
    }

    /** Adds one and returns the new value. Writer thread only. */
    public long increment() {
        long v = value + 1;
        VALUE.setOpaque(this, v);
        return v;
    }

    /** The current value; any thread. */
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
