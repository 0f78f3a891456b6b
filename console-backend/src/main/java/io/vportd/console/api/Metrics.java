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

    public static String render(List<PortStatus> ports, MetricRegistry registry) {
        StringBuilder b = new StringBuilder(8192);
        // Port counters: the same walk as the registry's, labels from the live port listing.
        Map<String, List<MetricRegistry.Sample>> portFamilies = new LinkedHashMap<>();
        Map<String, MetricSet.Metric> firstOf = new LinkedHashMap<>();
        for (PortStatus p : ports) {
            for (MetricSet.Metric m : p.counters().metrics().metrics()) {
                firstOf.putIfAbsent(m.name(), m);
                List<String> labels = new ArrayList<>(portLabelPairs(p));
                labels.addAll(m.labels());
                portFamilies.computeIfAbsent(m.name(), k -> new ArrayList<>())
                        .add(new MetricRegistry.Sample(labels, m.value().getAsLong()));
            }
        }
        for (Map.Entry<String, List<MetricRegistry.Sample>> f : portFamilies.entrySet()) {
            MetricSet.Metric m = firstOf.get(f.getKey());
            header(b, m.name(), type(m.type()), m.help());
            for (MetricRegistry.Sample s : f.getValue()) {
                sample(b, m.name(), s.labels(), s.value());
            }
        }
        gauge(b, ports, "vportd_port_guest_open", "1 while the guest has the port open.", PortStatus::guestOpen);
        gauge(b, ports, "vportd_port_host_connected", "1 while the host endpoint is connected.", PortStatus::hostConnected);
        gauge(b, ports, "vportd_port_holding_guest_data", "1 while a guest buffer waits for the host.",
                PortStatus::holdingGuestData);
        for (MetricRegistry.Family f : registry.families()) {
            header(b, f.name(), type(f.type()), f.help());
            for (MetricRegistry.Sample s : f.samples()) {
                sample(b, f.name(), s.labels(), s.value());
            }
        }
        header(b, "vportd_ports", "gauge", "Ports the device has.");
        b.append("vportd_ports ").append(ports.size()).append('\n');
        return b.toString();
    }

    private static String type(MetricSet.Type t) {
        return t.name().toLowerCase(Locale.ROOT);
    }

    private static void header(StringBuilder b, String name, String type, String help) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }

    private static void gauge(StringBuilder b, List<PortStatus> ports, String name, String help,
            java.util.function.Predicate<PortStatus> on) {
        header(b, name, "gauge", help);
        for (PortStatus p : ports) {
            sample(b, name, portLabelPairs(p), on.test(p) ? 1 : 0);
        }
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
