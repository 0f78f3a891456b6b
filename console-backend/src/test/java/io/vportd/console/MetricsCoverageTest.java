package io.vportd.console;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.api.DataPlanePorts;
import io.vportd.console.api.ManagementServer;
import io.vportd.console.cli.PortSpecParser;
import io.vportd.console.control.ControlStats;
import io.vportd.console.device.ConsoleDevice;
import io.vportd.console.device.DataPlane;
import io.vportd.console.device.DeviceCounters;
import io.vportd.console.device.PortCounters;
import io.vportd.console.device.PortStatus;
import io.vportd.console.device.QueueMap;
import io.vportd.telemetry.Counter;
import io.vportd.telemetry.MetricRegistry;
import io.vportd.telemetry.MetricSet;
import io.vportd.telemetry.SharedCounter;
import io.vportd.vhost.VhostStats;
import io.vportd.vring.QueueStats;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongSupplier;
import java.util.logging.SimpleFormatter;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every counter vportd keeps reaches the metrics text: a counter that is not in its object's
 * metric set, a set the daemon does not register, a registered value the exposition leaves out,
 * or a counter nothing increments, fails here.
 */
class MetricsCoverageTest {

    @TempDir
    Path dir;

    private static final io.vportd.console.api.PortManager NO_PORTS = new io.vportd.console.api.PortManager() {
        @Override public int maxPorts() { return 1; }
        @Override public List<PortStatus> listPorts() { return List.of(); }
        @Override public PortStatus addPort(io.vportd.console.control.PortConfig config) { throw new UnsupportedOperationException(); }
        @Override public io.vportd.console.device.RemovalReport removePort(int id) { throw new UnsupportedOperationException(); }
        @Override public void resize(int id, int cols, int rows) { throw new UnsupportedOperationException(); }
        @Override public String metrics() { return ""; }
    };

    private static final io.vportd.console.portlog.LogTarget NO_TARGET = new io.vportd.console.portlog.LogTarget() {
        @Override public void write(byte[] b, int off, int len, long epochMillis) { }
        @Override public void dropped(long bytes, long epochMillis) { }
        @Override public String describe() { return "nowhere"; }
        @Override public void close() { }
    };

    @Test
    void aPortLogsOwnCountersAreExportedWithThePortsLabels() throws IOException {
        ConsoleDevice device = new ConsoleDevice(4, List.of(
                PortSpecParser.parse("nr=1,name=logged,null,log=" + dir.resolve("logged.log"))));
        try {
            String text = new DataPlanePorts(device.dataPlane()).metrics();
            for (String name : List.of("vportd_port_log_bytes_written_total", "vportd_port_log_write_errors_total",
                    "vportd_port_log_dropped_bytes_total", "vportd_port_log_followers_dropped_total")) {
                assertTrue(text.contains("\n" + name + "{port=\"1\",name=\"logged\"} "), () -> name + " not exported:\n" + text);
            }
        } finally {
            device.close();
        }
    }

    /** Each object that keeps counters, with the set it exports them through. */
    private static List<Object[]> counterHolders(NonBlockingLogHandler log, ManagementServer api) {
        QueueStats q = new QueueStats();
        PortCounters p = new PortCounters();
        DeviceCounters d = new DeviceCounters();
        ControlStats c = new ControlStats();
        VhostStats v = new VhostStats();
        io.vportd.console.handover.HandoverStats h = new io.vportd.console.handover.HandoverStats();
        io.vportd.console.portlog.LogWriter w = new io.vportd.console.portlog.LogWriter(NO_TARGET, "port 0", 4096);
        io.vportd.console.web.WebStats web = new io.vportd.console.web.WebStats();
        return List.of(new Object[] {web, web.metrics()}, new Object[] {q, q.metrics()}, new Object[] {p, p.metrics()}, new Object[] {d, d.metrics()},
                new Object[] {c, c.metrics()}, new Object[] {v, v.metrics()}, new Object[] {log, log.metrics()},
                new Object[] {api, api.metrics()}, new Object[] {h, h.metrics()}, new Object[] {w, w.metrics()});
    }

    private static List<LongSupplier> counterFields(Object o) throws IllegalAccessException {
        List<LongSupplier> out = new ArrayList<>();
        for (Field f : o.getClass().getDeclaredFields()) {
            if (Modifier.isStatic(f.getModifiers())) {
                continue;
            }
            f.setAccessible(true);
            Object v = f.get(o);
            if (v instanceof Counter || v instanceof SharedCounter) {
                out.add((LongSupplier) v);
            } else if (v instanceof Counter[] array) {
                out.addAll(List.of(array));
            }
        }
        return out;
    }

    @Test
    void everyCounterFieldIsInTheSetItsOwnerExports() throws Exception {
        NonBlockingLogHandler log = new NonBlockingLogHandler(OutputStream.nullOutputStream(), new SimpleFormatter(), 16);
        ManagementServer api = ManagementServer.start(dir.resolve("api.sock"), NO_PORTS);
        try {
            for (Object[] h : counterHolders(log, api)) {
                List<LongSupplier> fields = counterFields(h[0]);
                assertFalse(fields.isEmpty(), h[0].getClass() + " keeps no counters?");
                for (LongSupplier c : fields) {
                    assertTrue(((MetricSet) h[1]).contains(c), h[0].getClass().getSimpleName() + " has a counter outside its metric set");
                }
            }
        } finally {
            api.close();
            log.close();
        }
    }

    @Test
    void everyRegisteredValueAndEveryPortCounterIsInTheMetricsText() throws IOException {
        ConsoleDevice device = new ConsoleDevice(4, List.of(PortSpecParser.parse("nr=0,console,name=con,null"),
                PortSpecParser.parse("nr=2,name=two,null")));
        DataPlane dp = device.dataPlane();
        NonBlockingLogHandler log = new NonBlockingLogHandler(OutputStream.nullOutputStream(), new SimpleFormatter(), 16);
        VhostStats vhost = new VhostStats();
        try {
            Main.registerCounters(dp.metrics(), vhost.metrics(), log.metrics());
            MetricRegistry r = dp.metrics();
            List<MetricSet> sets = r.entries().stream().map(MetricRegistry.Entry::set).toList();
            for (MetricSet s : List.of(vhost.metrics(), log.metrics(), dp.controlStats().metrics(), dp.counters().metrics())) {
                assertTrue(sets.contains(s), "a counter set the daemon keeps is not registered");
            }
            assertEquals(new QueueMap(4).queueCount() + 4, r.entries().size(), "one set per queue index, plus four");
            String text = new DataPlanePorts(dp).metrics();
            for (MetricRegistry.Entry e : r.entries()) {
                for (MetricSet.Metric m : e.set().metrics()) {
                    List<String> labels = new ArrayList<>(e.labels());
                    labels.addAll(m.labels());
                    assertTrue(text.contains(line(m.name(), labels)), () -> "not exported: " + m.name() + labels + "\n" + text);
                }
            }
            List<PortStatus> ports = dp.ports();
            assertEquals(2, ports.size());
            for (PortStatus p : ports) {
                for (MetricSet.Metric m : p.counters().metrics().metrics()) {
                    List<String> labels = new ArrayList<>(List.of("port", Integer.toString(p.id()), "name", p.name()));
                    labels.addAll(m.labels());
                    assertTrue(text.contains(line(m.name(), labels)), () -> "port counter not exported: " + m.name() + labels);
                }
            }
        } finally {
            device.close();
            log.close();
        }
    }

    private static String line(String name, List<String> labels) {
        StringBuilder b = new StringBuilder("\n").append(name);
        if (!labels.isEmpty()) {
            b.append('{');
            for (int i = 0; i < labels.size(); i += 2) {
                b.append(i > 0 ? "," : "").append(labels.get(i)).append("=\"").append(labels.get(i + 1)).append('"');
            }
            b.append('}');
        }
        return b.append(' ').toString();
    }

    /**
     * Every counter field is written somewhere in production code (a counter nothing increments
     * would export a constant 0 and hide a missing count). A source scan: the writes are plain calls.
     */
    @Test
    void everyCounterIsIncrementedSomewhere() throws Exception {
        StringBuilder src = new StringBuilder();
        for (String module : List.of("../vring-fastpath", "../vhost-user", ".")) {
            try (Stream<Path> files = Files.walk(Path.of(module, "src/main/java"))) {
                for (Path f : files.filter(x -> x.toString().endsWith(".java")).toList()) {
                    src.append(Files.readString(f)).append('\n');
                }
            }
        }
        String all = src.toString();
        NonBlockingLogHandler log = new NonBlockingLogHandler(OutputStream.nullOutputStream(), new SimpleFormatter(), 16);
        ManagementServer api = ManagementServer.start(dir.resolve("api2.sock"), NO_PORTS);
        try {
            for (Object[] h : counterHolders(log, api)) {
                for (Field f : h[0].getClass().getDeclaredFields()) {
                    Class<?> t = f.getType();
                    if (Modifier.isStatic(f.getModifiers()) || (t != Counter.class && t != SharedCounter.class)) {
                        continue;
                    }
                    // Either the field itself is written, or a field aliasing it (server-side copies).
                    Pattern write = Pattern.compile("\\b" + f.getName() + "\\s*\\.\\s*(increment|add|incrementAndGet|addAndGet)\\(");
                    assertTrue(write.matcher(all).find(), h[0].getClass().getSimpleName() + "." + f.getName() + " is never incremented");
                }
            }
        } finally {
            api.close();
            log.close();
        }
        for (Field f : PortCounters.class.getFields()) {
            if (f.getType() == int.class) {
                assertTrue(Pattern.compile("\\badd\\(\\s*PortCounters\\." + f.getName() + "\\b").matcher(all).find(),
                        "PortCounters." + f.getName() + " is never added to");
            }
        }
    }
}
