import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Summarises a bench/devlimit-compare run: DIR/LABEL/round-N/samples.tsv for every variant, as
 * medians over rounds per row (the ratio is the median of the per-run ratios to the plain socket
 * copy measured in the same run), into DIR/compare.md and a bar chart of those ratios,
 * DIR/compare.svg. With DEVLIMIT_SKIP_FIRST=1 the first round of every run is left out (with
 * --rounds-per-run above 1: the rounds after the JIT has settled).
 */
public final class DevLimitCompare {

    /** row name -> label -> list of per-round figure arrays. */
    static final Map<String, Map<String, List<double[]>>> ROWS = new LinkedHashMap<>();

    static final boolean SKIP_FIRST = "1".equals(System.getenv("DEVLIMIT_SKIP_FIRST"));

    public static void main(String[] args) throws IOException {
        Path dir = Path.of(args[0]);
        List<String> labels = List.of(args).subList(1, args.length);
        for (String label : labels) {
            try (var rounds = Files.list(dir.resolve(label))) {
                for (Path r : rounds.filter(Files::isDirectory).sorted().toList()) {
                    Path f = r.resolve("samples.tsv");
                    if (!Files.exists(f)) {
                        continue;
                    }
                    for (String line : Files.readAllLines(f)) {
                        String[] t = line.split("\t");
                        if (SKIP_FIRST && t[1].equals("1")) {
                            continue;
                        }
                        double[] v = new double[t.length - 3];
                        for (int i = 3; i < t.length; i++) {
                            v[i - 3] = Double.parseDouble(t[i]);
                        }
                        ROWS.computeIfAbsent(t[2], k -> new LinkedHashMap<>())
                                .computeIfAbsent(label, k -> new ArrayList<>()).add(v);
                    }
                }
            }
        }
        StringBuilder md = new StringBuilder();
        md.append("| row | variant | rounds | vportd MB/s | plain MB/s | ratio | vportd CPU ms/GiB | syscalls/MiB | driver sleeps/MiB | of which ≥ 0.9 ms |\n");
        md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        StringBuilder rt = new StringBuilder();
        rt.append("\n| 64-byte round trip | variant | rounds | vportd p50 µs | vportd p99 µs | plain p50 µs | plain p99 µs | p50 vportd/plain |\n");
        rt.append("|---|---|---:|---:|---:|---:|---:|---:|\n");
        StringBuilder idle = new StringBuilder();
        for (var row : ROWS.entrySet()) {
            for (String label : labels) {
                List<double[]> s = row.getValue().get(label);
                if (s == null) {
                    continue;
                }
                if (row.getKey().startsWith("vportd idle")) {
                    if (idle.isEmpty()) {
                        idle.append("\n| vportd idle after the rounds | variant | rounds | seconds | CPU ms (median) | CPU ms (max) |\n|---|---|---:|---:|---:|---:|\n");
                    }
                    idle.append(String.format(Locale.ROOT, "| idle | %s | %d | %.1f | %.0f | %.0f |%n", label, s.size(), med(s, 0), med(s, 1),
                            s.stream().mapToDouble(a -> a[1]).max().orElse(0)));
                } else if (row.getKey().startsWith("64-byte")) {
                    rt.append(String.format(Locale.ROOT, "| %s | %s | %d | %.1f | %.1f | %.1f | %.1f | %.2f× |%n", row.getKey(), label,
                            s.size(), med(s, 0), med(s, 1), med(s, 2), med(s, 3), medRatio(s, 0, 2)));
                } else {
                    md.append(String.format(Locale.ROOT, "| %s | %s | %d | %.0f | %.0f | %.2f× | %.0f | %.1f | %.2f | %.2f |%n", row.getKey(), label,
                            s.size(), med(s, 0), med(s, 1), medRatio(s, 0, 1), med(s, 2), med(s, 3), med(s, 4), med(s, 5)));
                }
            }
        }
        String text = md.toString() + rt + idle;
        Files.writeString(dir.resolve("compare.md"), text);
        Files.writeString(dir.resolve("compare.svg"), svg(labels));
        System.out.print(text);
    }

    static double med(List<double[]> s, int i) {
        double[] v = s.stream().mapToDouble(a -> a[i]).sorted().toArray();
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    static double medRatio(List<double[]> s, int a, int b) {
        List<double[]> r = s.stream().map(x -> new double[] {x[a] / x[b]}).toList();
        return med(r, 0);
    }

    static final String[] COLORS = {"#8c8c8c", "#b0c4de", "#6fa8dc", "#3d85c6", "#1f6fb4", "#0b3d91", "#e69138", "#6aa84f"};

    /** Grouped bars: per throughput row, each variant's ratio to the plain socket; a line at 1.0. */
    static String svg(List<String> labels) {
        List<String> rows = ROWS.keySet().stream().filter(k -> !k.startsWith("64-byte") && !k.startsWith("vportd idle")).toList();
        double max = 1.2;
        for (String r : rows) {
            for (String l : labels) {
                List<double[]> s = ROWS.get(r).get(l);
                if (s != null) {
                    max = Math.max(max, medRatio(s, 0, 1));
                }
            }
        }
        double top = Math.ceil(max * 5) / 5;
        int left = 50, plotTop = 40, plotH = 260, groupW = 30 + 16 * labels.size(), width = left + rows.size() * groupW + 180;
        int h = plotTop + plotH + 90;
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">%n", width, h));
        s.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"20\" font-size=\"14\" font-weight=\"bold\">vportd throughput / plain AF_UNIX copy, same run (median of rounds; higher is better)</text>%n", left));
        for (int k = 0; k <= (int) Math.round(top * 5); k++) {
            double v = k / 5.0;
            double y = plotTop + plotH - plotH * v / top;
            s.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\"/>%n", left, y,
                    left + rows.size() * groupW, y, Math.abs(v - 1) < 1e-9 ? "#c00" : "#ddd"));
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f×</text>%n", left - 4, y + 4, v));
        }
        for (int g = 0; g < rows.size(); g++) {
            String r = rows.get(g);
            int x0 = left + g * groupW + 15;
            for (int i = 0; i < labels.size(); i++) {
                List<double[]> smp = ROWS.get(r).get(labels.get(i));
                if (smp == null) {
                    continue;
                }
                double v = medRatio(smp, 0, 1);
                double bh = plotH * v / top;
                s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%.1f\" width=\"14\" height=\"%.1f\" fill=\"%s\"><title>%s %s: %.2f×</title></rect>%n",
                        x0 + 16 * i, plotTop + plotH - bh, bh, COLORS[i % COLORS.length], r, labels.get(i), v));
            }
            String[] words = r.split(", ", 2);
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>%n", x0 + 8 * labels.size(), plotTop + plotH + 16, esc(words[0])));
            if (words.length > 1) {
                s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>%n", x0 + 8 * labels.size(), plotTop + plotH + 30, esc(words[1])));
            }
        }
        int lx = left + rows.size() * groupW + 10;
        for (int i = 0; i < labels.size(); i++) {
            s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>%n",
                    lx, plotTop + 18 * i, COLORS[i % COLORS.length], lx + 16, plotTop + 18 * i + 10, esc(labels.get(i))));
        }
        s.append("</svg>\n");
        return s.toString();
    }

    static String esc(String t) {
        return t.replace("&", "&amp;").replace("<", "&lt;");
    }
}
