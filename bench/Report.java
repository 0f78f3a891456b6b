import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/** The generated part of docs/benchmarks-guest.md: machine, medians and ratios, every round's values. */
final class Report {

    static String begin(String tag) {
        return "<!-- bench/run: generated " + tag + " begin -->";
    }

    static String end(String tag) {
        return "<!-- bench/run: generated " + tag + " end -->";
    }

    /** One row of the report: key in the samples, label, unit, whether larger is better, goal ratio (0: none). */
    record Row(String key, String label, String unit, boolean higherBetter, double goal) {
    }

    static List<Row> rows(GuestBench.Config c) {
        List<Row> rows = new ArrayList<>();
        if (c.phase.equals("hot-add")) {
            rows.add(new Row("hotadd-" + c.hotAdd, "hot-add " + c.hotAdd + " ports until the guest sees every name"
                    + (c.hotAddBatch > 0 ? " (built-in: QMP in batches of " + c.hotAddBatch + ", see the notes)" : ""), "ms", false, 0));
            return rows;
        }
        for (int s : c.sizes) {
            rows.add(new Row("g2h-" + s, "guest → host, " + size(s) + " writes", "MB/s", true, 1.5));
        }
        for (int s : c.sizes) {
            rows.add(new Row("h2g-" + s, "host → guest, " + size(s) + " writes", "MB/s", true, 1.5));
        }
        rows.add(new Row("lat-p50", "round trip, 64 B, p50", "µs", false, 0.8));
        rows.add(new Row("lat-p99", "round trip, 64 B, p99", "µs", false, 0.8));
        rows.add(new Row("agg-" + c.aggPorts, "aggregate guest → host, " + c.aggPorts + " ports at once, 64 KiB writes", "MB/s", true, 1.5));
        if (c.hotAddEnabled) {
            rows.add(new Row("hotadd-" + c.hotAdd, "hot-add " + c.hotAdd + " ports until the guest sees every name"
                    + (c.hotAddBatch > 0 ? " (built-in: QMP in batches of " + c.hotAddBatch + ")" : ""), "ms", false, 0));
        }
        rows.add(new Row("rss-idle", "vportd resident memory, " + c.idlePorts + " ports, idle", "MiB", false, 0));
        rows.add(new Row("rss-load", "vportd resident memory, " + c.idlePorts + " ports, " + c.aggPorts + " streaming", "MiB", false, 0));
        return rows;
    }

    static String size(int s) {
        return s >= 1 << 20 ? (s >> 20) + " MiB" : s >= 1024 ? (s >> 10) + " KiB" : s + " B";
    }

    static double median(Collection<Double> vs) {
        double[] a = vs.stream().mapToDouble(Double::doubleValue).filter(d -> !Double.isNaN(d)).sorted().toArray();
        if (a.length == 0) {
            return Double.NaN;
        }
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }

    static double median(List<GuestBench.Sample> samples, String row, String dev) {
        return median(samples.stream().filter(s -> s.row().equals(row) && s.device().equals(dev))
                .map(GuestBench.Sample::value).toList());
    }

    static String fmt(double v) {
        if (Double.isNaN(v)) {
            return "—";
        }
        if (v >= 100) {
            return String.format(Locale.ROOT, "%.0f", v);
        }
        if (v >= 10) {
            return String.format(Locale.ROOT, "%.1f", v);
        }
        return String.format(Locale.ROOT, "%.2f", v);
    }

    static String section(GuestBench.Config c, Map<String, String> machine, List<GuestBench.Sample> samples, List<String> problems,
            List<String> notes) {
        String tag = c.phase.equals("hot-add") ? "hot-add" : "results";
        StringBuilder s = new StringBuilder();
        s.append(begin(tag)).append("\n\n");
        s.append(tag.equals("hot-add") ? "### Hot-add run\n\n" : "### Run\n\n");
        s.append("| | |\n|---|---|\n");
        machine.forEach((k, v) -> s.append("| ").append(k).append(" | ").append(v.replace("|", "\\|")).append(" |\n"));
        s.append("| rounds | ").append(c.rounds).append(" × (built-in, vportd), alternating").append(c.smoke ? " — SMOKE RUN, sizes too small to mean anything" : "").append(" |\n");
        if (!tag.equals("hot-add")) s.append("| bytes per stream row | ").append(GuestBench.human(c.totalBytes)).append(" (aggregate: ")
                .append(GuestBench.human(c.aggBytes)).append(" over ").append(c.aggPorts).append(" ports) |\n");
        if (!tag.equals("hot-add")) s.append("| round trips | ").append(c.latencyCount).append(" measured after ").append(c.latencyWarmup).append(" warm-up |\n");
        s.append("| queue sizes | built-in 128 entries per data queue (fixed); vportd vq_size=").append(c.vqSize).append(" |\n");
        if (!c.note.isBlank()) {
            s.append("| note | ").append(c.note).append(" |\n");
        }
        s.append(tag.equals("hot-add") ? "\n### Hot-add medians\n\n" : "\n### Medians\n\n");
        s.append("| measurement | unit | built-in | vportd | vportd / built-in | goal | met |\n");
        s.append("|---|---|---:|---:|---:|---|---|\n");
        for (Row r : rows(c)) {
            double a = median(samples, r.key(), GuestBench.BUILTIN);
            double b = median(samples, r.key(), GuestBench.VPORTD);
            double ratio = b / a;
            String goal = r.goal() == 0 ? "" : (r.higherBetter() ? "≥ " : "≤ ") + r.goal() + "×";
            String met = r.goal() == 0 || Double.isNaN(ratio) ? "" : (r.higherBetter() ? ratio >= r.goal() : ratio <= r.goal()) ? "yes" : "**no**";
            if (Double.isNaN(a) && Double.isNaN(b)) {
                s.append("| ").append(r.label()).append(" | ").append(r.unit()).append(" | not measured | not measured | | ")
                        .append(goal).append(" | |\n");
                continue;
            }
            s.append("| ").append(r.label()).append(" | ").append(r.unit()).append(" | ")
                    .append(r.key().startsWith("rss") ? "n/a" : fmt(a)).append(" | ")
                    .append(Double.isNaN(b) ? "not measured" : fmt(b)).append(" | ")
                    .append(Double.isNaN(ratio) ? "" : String.format(Locale.ROOT, "%.2f×", ratio)).append(" | ")
                    .append(goal).append(" | ").append(met).append(" |\n");
        }
        List<Row> cpuRows = rows(c).stream().filter(r -> r.unit().equals("MB/s")).toList();
        if (samples.stream().anyMatch(x -> x.row().startsWith("cpu:"))) {
            s.append("\nvportd's own CPU time (user + system, from /proc) per GiB moved, median: ");
            List<String> parts = new ArrayList<>();
            for (Row r : cpuRows) {
                double v = median(samples, "cpu:" + r.key(), GuestBench.VPORTD);
                if (!Double.isNaN(v)) {
                    parts.add(r.label() + " " + fmt(v) + " ms");
                }
            }
            s.append(String.join("; ", parts)).append(".\n");
        }
        s.append("\nMB/s is 10⁶ bytes per second of payload, timed on the host. Throughput: higher is better; "
                + "latency, hot-add time and memory: lower is better.\n");
        s.append(tag.equals("hot-add") ? "\n### Hot-add, every round\n\n" : "\n### Every round\n\n");
        s.append("| measurement | device |");
        for (int r = 1; r <= c.rounds; r++) {
            s.append(" round ").append(r).append(" |");
        }
        s.append("\n|---|---|");
        s.append("---:|".repeat(c.rounds)).append('\n');
        for (Row r : rows(c)) {
            for (String dev : List.of(GuestBench.BUILTIN, GuestBench.VPORTD)) {
                Map<Integer, Double> byRound = samples.stream().filter(x -> x.row().equals(r.key()) && x.device().equals(dev))
                        .collect(Collectors.toMap(GuestBench.Sample::round, GuestBench.Sample::value, (x, y) -> x));
                if (byRound.isEmpty()) {
                    continue;
                }
                s.append("| ").append(r.label()).append(" (").append(r.unit()).append(") | ").append(dev).append(" |");
                for (int k = 1; k <= c.rounds; k++) {
                    s.append(' ').append(byRound.containsKey(k) ? fmt(byRound.get(k)) : "—").append(" |");
                }
                s.append('\n');
            }
        }
        if (!notes.isEmpty()) {
            s.append("\n### Notes\n\n");
            for (String n : notes) {
                s.append("- ").append(n).append('\n');
            }
        }
        if (!problems.isEmpty()) {
            s.append("\n### Problems during the run\n\n");
            for (String p : problems) {
                s.append("- ").append(p.lines().findFirst().orElse("")).append('\n');
            }
        }
        s.append('\n').append(end(tag)).append('\n');
        return s.toString();
    }

    /** Replaces the generated section of {@code file} (between the markers), or appends it. */
    static void splice(Path file, String section, String tag) throws IOException {
        String BEGIN = begin(tag);
        String END = end(tag);
        String old = Files.exists(file) ? Files.readString(file) : "# vportd against QEMU's built-in virtio-serial\n\n";
        int b = old.indexOf(BEGIN);
        int e = old.indexOf(END);
        String updated;
        if (b >= 0 && e > b) {
            updated = old.substring(0, b) + section.stripTrailing() + old.substring(e + END.length());
        } else {
            updated = old + (old.endsWith("\n") ? "\n" : "\n\n") + section;
        }
        Files.writeString(file, updated);
    }
}
