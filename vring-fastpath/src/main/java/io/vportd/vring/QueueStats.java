package io.vportd.vring;

import io.vportd.telemetry.Counter;
import io.vportd.telemetry.LogLimiter;
import io.vportd.telemetry.MetricSet;
import java.util.Locale;

/**
 * Counters of one virtqueue, kept for the device's life: pass the same instance each time the
 * queue with this index restarts, so counts survive ring restarts. Exactly one thread at a time
 * (the ring worker) writes them; any thread may read them ({@link Counter} semantics). The
 * counters live in {@link #metrics()}, which the owner registers with the queue's labels.
 */
public final class QueueStats {

    private static final ChainError[] ERRORS = ChainError.values();
    private static final System.Logger LOGGER = System.getLogger("io.vportd.vring");

    private final MetricSet metrics = new MetricSet();
    private final Counter chains = metrics.counter("vportd_queue_chains_total", "Descriptor chains popped from a virtqueue.");
    private final Counter chainBytes = metrics.counter("vportd_queue_chain_bytes_total", "Bytes of the chains popped.");
    private final Counter usedBytes = metrics.counter("vportd_queue_used_bytes_total", "Bytes reported in used entries.");
    private final Counter interrupts = metrics.counter("vportd_queue_interrupts_total", "Guest notifications sent.");
    private final Counter interruptsSuppressed = metrics.counter("vportd_queue_interrupts_suppressed_total",
            "Guest notifications the guest asked not to get.");
    private final Counter notifyRechecks = metrics.counter("vportd_queue_notify_rechecks_total",
            "Times re-enabling notifications found buffers that had arrived meanwhile.");
    private final Counter[] bad = new Counter[ERRORS.length];
    /** Bad-input log lines of this queue: one limiter for the queue's life, restarts included. */
    final LogLimiter log = new LogLimiter(LOGGER);

    public QueueStats() {
        for (ChainError e : ERRORS) {
            bad[e.ordinal()] = metrics.counter("vportd_queue_bad_chains_total",
                    "Malformed (hostile) descriptor chains, completed empty, by reason.",
                    "reason", e.name().toLowerCase(Locale.ROOT));
        }
        metrics.derived("vportd_queue_bad_chains_total", "Malformed (hostile) descriptor chains, completed empty, by reason.",
                this::badChains, "reason", "all");
    }

    /** This queue's counters, to register with its labels (queue, port, direction). */
    public MetricSet metrics() {
        return metrics;
    }

    // ---- writer side (the ring worker), package-private ----

    void chainPopped(long bytes) {
        chains.increment();
        chainBytes.add(bytes);
    }

    void chainUnpopped(long bytes) {
        chains.add(-1);
        chainBytes.add(-bytes);
    }

    void chainsUnpopped(int n, long bytes) {
        chains.add(-n);
        chainBytes.add(-bytes);
    }

    void used(long bytes) {
        usedBytes.add(bytes);
    }

    void interrupt() {
        interrupts.increment();
    }

    void interruptSuppressed() {
        interruptsSuppressed.increment();
    }

    void notifyRecheck() {
        notifyRechecks.increment();
    }

    void badChain(ChainError why) {
        bad[why.ordinal()].increment();
    }

    // ---- reader side (any thread) ----

    /** Good chains handed to the caller by {@code pop}. */
    public long chains() {
        return chains.get();
    }

    /** Sum of the total lengths of the good chains popped. */
    public long chainBytes() {
        return chainBytes.get();
    }

    /** Sum of the lengths reported in used entries. */
    public long usedBytes() {
        return usedBytes.get();
    }

    /** {@code publishUsed} calls that asked for a guest interrupt. */
    public long interrupts() {
        return interrupts.get();
    }

    /** {@code publishUsed} calls with new used entries where the driver had suppressed the interrupt. */
    public long interruptsSuppressed() {
        return interruptsSuppressed.get();
    }

    /** {@code enableNotifications} calls that found buffers had arrived meanwhile (caller drains again). */
    public long notifyRechecks() {
        return notifyRechecks.get();
    }

    /** Bad chains (and broken-queue events) of one kind. */
    public long badChains(ChainError why) {
        return bad[why.ordinal()].get();
    }

    /** Bad chains of all kinds, including broken-queue events. */
    public long badChains() {
        long sum = 0;
        for (Counter c : bad) {
            sum += c.get();
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
