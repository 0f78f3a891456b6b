package io.vportd.telemetry;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Every {@link MetricSet} of a process, with the labels that say whose it is. The exposition
 * walks it ({@link #families()}), so whatever is registered is exported. Registration and
 * removal are rare (a port added or removed) and may happen on any thread; walking never blocks
 * them.
 */
public final class MetricRegistry {

    /** One registered set and its identity labels (name/value pairs). */
    public record Entry(List<String> labels, MetricSet set) {
    }

    /** One exported value: full label pairs (identity labels first) and the value. */
    public record Sample(List<String> labels, long value) {
    }

    /** All samples of one metric name, with its help and type (from its first registration). */
    public record Family(String name, String help, MetricSet.Type type, List<Sample> samples) {
    }

    private final CopyOnWriteArrayList<Entry> entries = new CopyOnWriteArrayList<>();

    /** Registers {@code set} under {@code labels} (name, value, name, value…); returns a handle for removal. */
    public Entry register(MetricSet set, String... labels) {
        if (labels.length % 2 != 0) {
            throw new IllegalArgumentException("labels come in name/value pairs");
        }
        Entry e = new Entry(List.of(labels), set);
        entries.add(e);
        return e;
    }

    /** Removes a registration (e.g. of a removed port); a no-op when it is not there. */
    public void unregister(Entry e) {
        entries.remove(e);
    }

    public List<Entry> entries() {
        return List.copyOf(entries);
    }

    /** A snapshot of every value, grouped by metric name in the order names first appeared. */
    public List<Family> families() {
        Map<String, Family> byName = new LinkedHashMap<>();
        for (Entry e : entries) {
            for (MetricSet.Metric m : e.set().metrics()) {
                Family f = byName.computeIfAbsent(m.name(), n -> new Family(n, m.help(), m.type(), new ArrayList<>()));
                List<String> labels = new ArrayList<>(e.labels().size() + m.labels().size());
                labels.addAll(e.labels());
                labels.addAll(m.labels());
                f.samples().add(new Sample(List.copyOf(labels), m.value().getAsLong()));
            }
        }
        return List.copyOf(byName.values());
    }

    /**
     * The value of every counter that is not 0 (not derived values or gauges) keyed by name and full labels: what
     * a live hand-over carries so that counters go on from where they were in the next process.
     */
    public java.util.Map<String, Long> counterValues() {
        java.util.Map<String, Long> out = new LinkedHashMap<>();
        for (Entry e : entries) {
            for (MetricSet.Metric m : e.set().metrics()) {
                if (m.value() instanceof Counter || m.value() instanceof SharedCounter) {
                    long v = m.value().getAsLong();
                    if (v != 0) { // most counters are 0: only what counted anything travels
                        out.merge(key(m, e), v, Long::sum);
                    }
                }
            }
        }
        return out;
    }

    /**
     * Adds the values another process's {@link #counterValues} had to the counters registered here
     * under the same name and labels; returns how many counters took a value. Run it on the thread
     * that writes the single-writer {@link Counter}s (the data plane), before they count anything.
     */
    public int carry(java.util.Map<String, Long> values) {
        int taken = 0;
        for (Entry e : entries) {
            for (MetricSet.Metric m : e.set().metrics()) {
                Long v = values.get(key(m, e));
                if (v == null || v <= 0) {
                    continue;
                }
                if (m.value() instanceof Counter c) {
                    c.add(v);
                    taken++;
                } else if (m.value() instanceof SharedCounter c) {
                    c.addAndGet(v);
                    taken++;
                }
            }
        }
        return taken;
    }

    private static String key(MetricSet.Metric m, Entry e) {
        StringBuilder b = new StringBuilder(m.name());
        for (String l : e.labels()) {
            b.append('\u0000').append(l);
        }
        for (String l : m.labels()) {
            b.append('\u0000').append(l);
        }
        return b.toString();
    }
}
