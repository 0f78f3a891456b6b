package io.vportd.telemetry;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.function.LongSupplier;
import java.util.regex.Pattern;

/**
 * The counters (and derived values) of one object — a queue, a port, a device, a server — each
 * with its metric name, help text and any labels of its own. The object's identity labels
 * (device, port, queue) are given when the set is registered with a {@link MetricRegistry}.
 * Counters come only from here, so a counter without a metric name cannot exist.
 * Build the set in one thread before it is registered; it is read-only afterwards.
 */
public final class MetricSet {

    private static final Pattern NAME = Pattern.compile("[a-z_][a-z0-9_]*");
    /**
     * Names already checked. A process creates a few dozen names, but hundreds of sets of them (a
     * set per queue, port and device): a daemon of 256 devices matched the pattern 100,000 times
     * at start-up.
     */
    private static final java.util.Set<String> CHECKED = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /** Prometheus metric types used by vportd. */
    public enum Type { COUNTER, GAUGE }

    /**
     * One exported value: {@code labels} are this metric's own labels as name/value pairs
     * (e.g. {@code reason}); the set's identity labels are added at registration.
     */
    public record Metric(String name, String help, Type type, List<String> labels, LongSupplier value) {
    }

    private final List<Metric> metrics = new ArrayList<>();

    /** A single-writer counter. {@code labels}: name, value, name, value… */
    public Counter counter(String name, String help, String... labels) {
        Counter c = new Counter();
        add(name, help, Type.COUNTER, labels, c);
        return c;
    }

    /** A counter written by several threads. */
    public SharedCounter shared(String name, String help, String... labels) {
        SharedCounter c = new SharedCounter();
        add(name, help, Type.COUNTER, labels, c);
        return c;
    }

    /** A counter computed from others (e.g. a sum); {@code value} must be safe to call from any thread. */
    public void derived(String name, String help, LongSupplier value, String... labels) {
        add(name, help, Type.COUNTER, labels, value);
    }

    /** A gauge read from any thread. */
    public void gauge(String name, String help, LongSupplier value, String... labels) {
        add(name, help, Type.GAUGE, labels, value);
    }

    private void add(String name, String help, Type type, String[] labels, LongSupplier value) {
        if (!CHECKED.contains(name)) {
            if (!NAME.matcher(name).matches()) {
                throw new IllegalArgumentException("bad metric name: " + name);
            }
            CHECKED.add(name);
        }
        if (labels.length % 2 != 0) {
            throw new IllegalArgumentException("labels come in name/value pairs: " + name);
        }
        metrics.add(new Metric(name, Objects.requireNonNull(help), type, List.of(labels), value));
    }

    /** The metrics in the order they were created. */
    public List<Metric> metrics() {
        return Collections.unmodifiableList(metrics);
    }

    /** True when {@code value} is one of this set's metrics (the identity of the counter object). */
    public boolean contains(LongSupplier value) {
        for (Metric m : metrics) {
            if (m.value() == value) {
                return true;
            }
        }
        return false;
    }
}
