import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/** The generated part of docs/reliability.md and its SVG chart (vportd's RSS and fds over time). */
final class SoakReport {

    static final String BEGIN = "<!-- soak/run: generated results begin -->";
    static final String END = "<!-- soak/run: generated results end -->";

    static String section(Soak s) {
        Soak.Config c = s.c;
        StringBuilder b = new StringBuilder(BEGIN).append('\n');
        boolean pass = s.failures.isEmpty();
        b.append(String.format(Locale.ROOT, "### Run of %s: %s%n%n", s.info.getOrDefault("date (UTC)", "?"),
                pass ? "PASS" : "FAIL"));
        b.append(String.format(Locale.ROOT, "`soak/run --minutes %s --seed %d --ports %d`%s. ", fmt(c.minutes), c.seed, c.ports,
                c.minutes < 30 ? " (a **short run**: it shows the harness works; the reference figures come from a 60-minute run)" : ""));
        b.append(String.format(Locale.ROOT, "Moved %s host → guest and %s guest → host on %d stream ports, every byte checked; "
                        + "%d faults injected (churn events, below); **%d bytes lost, duplicated or reordered**.%n%n",
                Soak.human(s.bytesToGuest), Soak.human(s.bytesToHost), c.ports, s.faultsTotal(),
                pass ? 0 : -1).replace("**-1 bytes", "**see the failed checks: bytes"));
        b.append("| | |\n|---|---|\n");
        synchronized (s.info) {
            s.info.forEach((k, v) -> b.append("| ").append(k).append(" | ").append(v.replace("|", "\\|")).append(" |\n"));
        }
        b.append("\n**Checks**\n\n| check | result | |\n|---|---|---|\n");
        for (String[] ch : s.checks) {
            b.append("| ").append(ch[0]).append(" | ").append(ch[1].replace("|", "\\|").replace("\n", " ")).append(" | ")
                    .append(ch[2]).append(" |\n");
        }
        b.append("\n**Faults injected, by kind**\n\n| kind | count |\n|---|---:|\n");
        Map<String, Long> f = new TreeMap<>();
        s.faults.forEach((k, v) -> f.put(k, v.sum()));
        f.forEach((k, v) -> b.append("| ").append(k).append(" | ").append(v).append(" |\n"));
        b.append("\nBack-pressure on the stream ports (random pauses of up to 200 ms, not counted as faults): ");
        b.append(String.join(", ", new TreeMap<>(s.pauses).entrySet().stream().map(e -> e.getKey() + " " + e.getValue()).toList())).append(".\n");
        b.append("\n**vportd over time** (samples every ").append(c.sampleSeconds).append(" s; all of them in the run's `samples.csv`)\n\n");
        b.append("| minute | RSS (MiB) | fds | threads | host → guest | guest → host | host-side faults so far |\n|---:|---:|---:|---:|---:|---:|---:|\n");
        List<long[]> sm = s.samples;
        int step = Math.max(1, sm.size() / 12);
        for (int i = 0; i < sm.size(); i += step) {
            row(b, sm.get(i));
        }
        if (!sm.isEmpty() && (sm.size() - 1) % step != 0) {
            row(b, sm.get(sm.size() - 1));
        }
        b.append("\n![vportd RSS and open fds during the soak run](reliability.svg)\n");
        b.append(END).append('\n');
        return b.toString();
    }

    static void row(StringBuilder b, long[] r) {
        b.append(String.format(Locale.ROOT, "| %.1f | %.1f | %d | %d | %s | %s | %d |%n", r[0] / 60000.0, r[1] / 1024.0, r[2], r[3],
                Soak.human(r[4]), Soak.human(r[5]), r[6]));
    }

    static String fmt(double v) {
        return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
    }

    static void splice(Path file, String section) throws IOException {
        String old = Files.exists(file) ? Files.readString(file) : "# Reliability\n\n";
        int b = old.indexOf(BEGIN);
        int e = old.indexOf(END);
        String updated = b >= 0 && e > b ? old.substring(0, b) + section.stripTrailing() + old.substring(e + END.length())
                : old + (old.endsWith("\n") ? "\n" : "\n\n") + section;
        Files.writeString(file, updated);
    }

    /** Two panels over the run's minutes, one above the other: RSS (MiB) and open fds. */
    static String chart(Soak s) {
        List<long[]> sm = s.samples;
        int w = 760, left = 70, right = 30, top = 50, ph = 120, gap = 50;
        int pw = w - left - right, h = top + 2 * ph + gap + 70;
        double tMax = 1e-9;
        for (long[] r : sm) {
            tMax = Math.max(tMax, r[0] / 60000.0);
        }
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">%n", w, h));
        b.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"bold\">vportd during the soak run (%s min of churn, %d stream ports%s)</text>%n",
                left, fmt(s.c.minutes), s.c.ports, s.c.minutes < 30 ? ", short run" : ""));
        panel(b, sm, 1, 1024.0, "resident memory (VmRSS), MiB", "#1f6fb4", tMax, left, top, pw, ph);
        panel(b, sm, 2, 1, "open file descriptors", "#c0392b", tMax, left, top + ph + gap, pw, ph);
        int axisY = top + 2 * ph + gap;
        for (int k = 0; k <= 6; k++) {
            double x = left + pw * k / 6.0;
            b.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>%n", x, axisY + 16, num(tMax * k / 6)));
        }
        b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">minutes since the streams started "
                + "(churn for the first %s, then the END exchange); generated by soak/run</text>%n", left + pw / 2, axisY + 36, fmt(s.c.minutes)));
        b.append("</svg>\n");
        return b.toString();
    }

    static void panel(StringBuilder b, List<long[]> sm, int col, double div, String title, String color, double tMax,
            int left, int top, int pw, int ph) {
        double max = 1;
        for (long[] r : sm) {
            max = Math.max(max, r[col] / div);
        }
        max = niceCeil(max * 1.1);
        b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\" fill=\"%s\">%s</text>%n", left, top - 8, color, title));
        for (int k = 0; k <= 4; k++) {
            double y = top + ph - ph * k / 4.0;
            b.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>%n", left, y, left + pw, y));
            b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>%n", left - 6, y + 4, num(max * k / 4)));
        }
        StringBuilder p = new StringBuilder();
        for (long[] r : sm) {
            double x = left + pw * (r[0] / 60000.0) / tMax;
            double y = top + ph - ph * (r[col] / div) / max;
            p.append(String.format(Locale.ROOT, "%.1f,%.1f ", x, y));
        }
        b.append(String.format(Locale.ROOT, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>%n", color, p.toString().trim()));
    }

    static String num(double v) {
        return v == Math.rint(v) ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%.1f", v);
    }

    static double niceCeil(double v) {
        double p = Math.pow(10, Math.floor(Math.log10(v)));
        for (double m : new double[] {1, 2, 2.5, 5, 10}) {
            if (m * p >= v) {
                return m * p;
            }
        }
        return 10 * p;
    }
}
