package io.vportd.vring;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Counters of one virtqueue. Exactly one thread (the ring worker) writes them; any thread may read
 * them. Writes are opaque stores of a value the writer computed from its own last write, so a
 * reader never sees a torn long and eventually sees every update, and the writer pays no fence.
 * A stats object may outlive a {@link SplitQueue}: pass the same instance when a queue restarts.
 */
public final class QueueStats {

    private static final VarHandle CHAINS;
    private static final VarHandle CHAIN_BYTES;
    private static final VarHandle USED_BYTES;
    private static final VarHandle INTERRUPTS;
    private static final VarHandle SUPPRESSED;
    private static final VarHandle RECHECKS;
    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            CHAINS = l.findVarHandle(QueueStats.class, "chains", long.class);
            CHAIN_BYTES = l.findVarHandle(QueueStats.class, "chainBytes", long.class);
            USED_BYTES = l.findVarHandle(QueueStats.class, "usedBytes", long.class);
            INTERRUPTS = l.findVarHandle(QueueStats.class, "interrupts", long.class);
            SUPPRESSED = l.findVarHandle(QueueStats.class, "interruptsSuppressed", long.class);
            RECHECKS = l.findVarHandle(QueueStats.class, "notifyRechecks", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private static final ChainError[] ERRORS = ChainError.values();

    private long chains;
    private long chainBytes;
    private long usedBytes;
    private long interrupts;
    private long interruptsSuppressed;
    private long notifyRechecks;
    private final long[] bad = new long[ERRORS.length];

    // ---- writer side (the ring worker), package-private ----

    void chainPopped(long bytes) {
        CHAINS.setOpaque(this, chains + 1);
        CHAIN_BYTES.setOpaque(this, chainBytes + bytes);
    }

    void chainUnpopped(long bytes) {
        CHAINS.setOpaque(this, chains - 1);
        CHAIN_BYTES.setOpaque(this, chainBytes - bytes);
    }

    void used(long bytes) {
        USED_BYTES.setOpaque(this, usedBytes + bytes);
    }

    void interrupt() {
        INTERRUPTS.setOpaque(this, interrupts + 1);
    }

    void interruptSuppressed() {
        SUPPRESSED.setOpaque(this, interruptsSuppressed + 1);
    }

    void notifyRecheck() {
        RECHECKS.setOpaque(this, notifyRechecks + 1);
    }

    void badChain(ChainError why) {
        int i = why.ordinal();
        LONGS.setOpaque(bad, i, bad[i] + 1);
    }

    // ---- reader side (any thread) ----

    /** Good chains handed to the caller by {@code pop}. */
    public long chains() {
        return (long) CHAINS.getOpaque(this);
    }

    /** Sum of the total lengths of the good chains popped. */
    public long chainBytes() {
        return (long) CHAIN_BYTES.getOpaque(this);
    }

    /** Sum of the lengths reported in used entries. */
    public long usedBytes() {
        return (long) USED_BYTES.getOpaque(this);
    }

    /** {@code publishUsed} calls that asked for a guest interrupt. */
    public long interrupts() {
        return (long) INTERRUPTS.getOpaque(this);
    }

    /** {@code publishUsed} calls with new used entries where the driver had suppressed the interrupt. */
    public long interruptsSuppressed() {
        return (long) SUPPRESSED.getOpaque(this);
    }

    /** {@code enableNotifications} calls that found buffers had arrived meanwhile (caller drains again). */
    public long notifyRechecks() {
        return (long) RECHECKS.getOpaque(this);
    }

    /** Bad chains (and broken-queue events) of one kind. */
    public long badChains(ChainError why) {
        return (long) LONGS.getOpaque(bad, why.ordinal());
    }

    /** Bad chains of all kinds, including broken-queue events. */
    public long badChains() {
        long sum = 0;
        for (int i = 0; i < bad.length; i++) {
            sum += (long) LONGS.getOpaque(bad, i);
        }
        return sum;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("QueueStats[chains=").append(chains())
                .append(", chainBytes=").append(chainBytes())
                .append(", usedBytes=").append(usedBytes())
                .append(", interrupts=").append(interrupts())
                .append(", suppressed=").append(interruptsSuppressed())
                .append(", rechecks=").append(notifyRechecks());
        for (ChainError e : ERRORS) {
            long n = badChains(e);
            if (n != 0) {
                sb.append(", ").append(e.name()).append('=').append(n);
            }
        }
        return sb.append(']').toString();
    }
}
