package io.vportd.console.api;

import io.vportd.console.device.PortStatus;
import io.vportd.telemetry.MetricRegistry;
import io.vportd.telemetry.MetricSet;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Renders vportd's counters in the Prometheus text exposition format (version 0.0.4). It holds
 * no list of counters of its own: it walks the counters of each port (from the port listing,
 * labelled {@code port} and {@code name}), the port gauges, and every set in the
 * {@link MetricRegistry} (queues, control protocol, device, vhost-user sessions, the logger), so
 * a counter created anywhere in those sets is exported without touching this class.
 */
public final class Metrics {

    /** The Content-Type of the format. */
    public static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    private Metrics() {
    }

    /** One device's part: its ports, its registry, and the labels that tell it from the others (none for a lone device). */
    public record Source(List<String> labels, List<PortStatus> ports, MetricRegistry registry) {
    }

    /** The exposition of a daemon of one device: no device label. */
    public static String render(List<PortStatus> ports, MetricRegistry registry) {
        return renderAll(List.of(new Source(List.of(), ports, registry)), null);
    }

    /**
     * The exposition of several devices (samples of one metric from every device under one
     * header, each labelled by its source) and of {@code shared}, the process's own counters
     * (unlabelled; may be null).
     */
    public static String renderAll(List<Source> sources, MetricRegistry shared) {
        Map<String, Out> families = new LinkedHashMap<>();
        for (Source src : sources) {
            List<PortStatus> ports = src.ports();
            // Port counters: the same walk as the registry's, labels from the live port listing.
            for (PortStatus p : ports) {
                for (MetricSet.Metric m : p.counters().metrics().metrics()) {
                    List<String> labels = new ArrayList<>(src.labels());
                    labels.addAll(portLabelPairs(p));
                    labels.addAll(m.labels());
                    family(families, m.name(), type(m.type()), m.help()).add(labels, m.value().getAsLong());
                }
            }
            gauge(families, src, "vportd_port_guest_open", "1 while the guest has the port open.", PortStatus::guestOpen);
            gauge(families, src, "vportd_port_host_connected", "1 while the host endpoint is connected.",
                    PortStatus::hostConnected);
            gauge(families, src, "vportd_port_holding_guest_data", "1 while a guest buffer waits for the host.",
                    PortStatus::holdingGuestData);
            registry(families, src.labels(), src.registry());
            family(families, "vportd_ports", "gauge", "Ports the device has.").add(src.labels(), ports.size());
        }
        if (shared != null) {
            registry(families, List.of(), shared);
        }
        StringBuilder b = new StringBuilder(8192);
        for (Out f : families.values()) {
            b.append("# HELP ").append(f.name).append(' ').append(f.help).append('\n');
            b.append("# TYPE ").append(f.name).append(' ').append(f.type).append('\n');
            b.append(f.samples);
        }
        return b.toString();
    }

    /** One metric name's header and its samples so far. */
    private static final class Out {
        final String name;
        final String type;
        final String help;
        final StringBuilder samples = new StringBuilder();

        Out(String name, String type, String help) {
            this.name = name;
            this.type = type;
            this.help = help;
        }

        void add(List<String> labels, long value) {
            sample(samples, name, labels, value);
        }
    }

    private static Out family(Map<String, Out> families, String name, String type, String help) {
        return families.computeIfAbsent(name, n -> new Out(n, type, help));
    }

    private static void registry(Map<String, Out> families, List<String> prefix, MetricRegistry registry) {
        for (MetricRegistry.Family f : registry.families()) {
            Out out = family(families, f.name(), type(f.type()), f.help());
            for (MetricRegistry.Sample s : f.samples()) {
                if (prefix.isEmpty()) {
                    out.add(s.labels(), s.value());
                } else {
                    List<String> labels = new ArrayList<>(prefix);
                    labels.addAll(s.labels());
                    out.add(labels, s.value());
                }
            }
        }
    }

    private static void gauge(Map<String, Out> families, Source src, String name, String help,
                              java.util.function.Predicate<PortStatus> on) {
        Out out = family(families, name, "gauge", help);
        for (PortStatus p : src.ports()) {
            List<String> labels = new ArrayList<>(src.labels());
            labels.addAll(portLabelPairs(p));
            out.add(labels, on.test(p) ? 1 : 0);
        }
    }

    private static String type(MetricSet.Type t) {
        return t.name().toLowerCase(Locale.ROOT);
    }

    private static void sample(StringBuilder b, String name, List<String> labels, long value) {
        b.append(name);
        if (!labels.isEmpty()) {
            b.append('{');
            for (int i = 0; i < labels.size(); i += 2) {
                if (i > 0) {
                    b.append(',');
                }
                b.append(labels.get(i)).append("=\"").append(escape(labels.get(i + 1))).append('"');
            }
            b.append('}');
        }
        b.append(' ').append(value).append('\n');
    }

    private static List<String> portLabelPairs(PortStatus p) {
        return List.of("port", Integer.toString(p.id()), "name", p.name() == null ? "" : p.name());
    }

    /** Label values escape backslash, double quote and newline. */
    static String escape(String v) {
        StringBuilder b = new StringBuilder(v.length());
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            switch (c) {
                case '\\' -> b.append("\\\\");
                case '"' -> b.append("\\\"");
                case '\n' -> b.append("\\n");
                default -> b.append(c);
            }
        }
        return b.toString();
    }
}
