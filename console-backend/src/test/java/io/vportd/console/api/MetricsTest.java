package io.vportd.console.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.control.ControlStats;
import io.vportd.console.device.DeviceCounters;
import io.vportd.console.device.PortCounters;
import io.vportd.console.device.PortStatus;
import io.vportd.console.device.QueueMap;
import io.vportd.telemetry.MetricRegistry;
import io.vportd.vring.QueueStats;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class MetricsTest {

    private static final Pattern SAMPLE =
            Pattern.compile("[a-z_]+(\\{([a-z_]+=\"([^\"\\\\\\n]|\\\\[\\\\\"n])*\",?)+\\})? -?[0-9]+");

    @Test
    void everyLineIsValidExpositionFormatAndLabelsAreEscaped() {
        List<PortStatus> ports = List.of(
                new PortStatus(3, "org.x", false, "socket /p", true, true, true, new PortCounters()),
                new PortStatus(4, null, true, "null", false, false, false, new PortCounters()),
                new PortStatus(5, "we\"ird\\name", false, "null", false, false, false, new PortCounters()));
        MetricRegistry registry = new MetricRegistry();
        registry.register(new QueueStats().metrics(), "queue", Integer.toString(QueueMap.CONTROL_RX), "port", "control",
                "direction", "rx");
        registry.register(new QueueStats().metrics(), "queue", "8", "port", "3", "direction", "rx");
        registry.register(new DeviceCounters().metrics());
        registry.register(new ControlStats().metrics());
        String text = Metrics.render(ports, registry);
        Set<String> typed = new HashSet<>();
        for (String line : text.split("\n")) {
            if (line.startsWith("# TYPE ")) {
                assertTrue(typed.add(line.split(" ")[2]), () -> "TYPE given twice: " + line);
                continue;
            }
            if (line.startsWith("# HELP ")) {
                continue;
            }
            assertTrue(SAMPLE.matcher(line).matches(), () -> "not a sample line: " + line);
            String family = line.split("[{ ]")[0];
            assertTrue(typed.contains(family), () -> "sample before its TYPE: " + line);
        }
        assertTrue(text.contains("vportd_port_guest_open{port=\"3\",name=\"org.x\"} 1\n"), text);
        assertTrue(text.contains("vportd_port_holding_guest_data{port=\"3\",name=\"org.x\"} 1\n"), text);
        assertTrue(text.contains("name=\"we\\\"ird\\\\name\""), text);
        assertTrue(text.contains("vportd_queue_chains_total{queue=\"2\",port=\"control\",direction=\"rx\"} 0\n"), text);
        assertTrue(text.contains("vportd_queue_bad_chains_total{queue=\"8\",port=\"3\",direction=\"rx\",reason=\"all\"} 0\n"));
        assertEquals(1, text.lines().filter(l -> l.startsWith("vportd_ports ")).count());
    }
}
