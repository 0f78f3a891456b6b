package io.vportd.console.arch;

import io.vportd.console.device.DataPlane;
import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.spi.ToolProvider;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packages of console-backend form no cycle: dependencies read from the compiled main
 * classes with {@code jdeps} (class files see fully qualified names and same-line uses that an
 * import scan would miss).
 */
class PackageCycleTest {

    private static final String ROOT = "io.vportd.console";
    private static final Pattern EDGE = Pattern.compile("^\\s+(\\S+)\\s+->\\s+(\\S+)\\s");

    @Test
    void consoleBackendPackagesHaveNoCycle() throws URISyntaxException {
        Map<String, Set<String>> graph = packageGraph(mainClasses());
        assertTrue(graph.containsKey(ROOT + ".device"), "jdeps saw the device package: " + graph);
        List<List<String>> cycles = cycles(graph);
        assertEquals(List.of(), cycles, "package cycles in console-backend");
    }

    @Test
    void aCycleIsFound() {
        Map<String, Set<String>> g = new TreeMap<>();
        g.put("a", Set.of("b"));
        g.put("b", Set.of("c"));
        g.put("c", Set.of("a"));
        g.put("d", Set.of("a"));
        List<List<String>> found = cycles(g);
        assertEquals(1, found.size());
        assertEquals(Set.of("a", "b", "c"), new TreeSet<>(found.get(0)));
        assertFalse(cycles(Map.of("x", Set.of("y"), "y", Set.of())).iterator().hasNext());
    }

    private static Path mainClasses() throws URISyntaxException {
        return Path.of(DataPlane.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    }

    static Map<String, Set<String>> packageGraph(Path classes) {
        ToolProvider jdeps = ToolProvider.findFirst("jdeps").orElseThrow(() -> new AssertionError("no jdeps in this JDK"));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int rc = jdeps.run(new PrintWriter(out), new PrintWriter(err), "-verbose:package", classes.toString());
        assertEquals(0, rc, "jdeps failed: " + err);
        Map<String, Set<String>> graph = new TreeMap<>();
        for (String line : out.toString().split("\n")) {
            Matcher m = EDGE.matcher(line);
            if (!m.find()) {
                continue;
            }
            String from = m.group(1);
            String to = m.group(2);
            if (inScope(from) && inScope(to) && !from.equals(to)) {
                graph.computeIfAbsent(from, k -> new TreeSet<>()).add(to);
                graph.computeIfAbsent(to, k -> new TreeSet<>());
            }
        }
        return graph;
    }

    private static boolean inScope(String pkg) {
        return pkg.equals(ROOT) || pkg.startsWith(ROOT + ".");
    }

    /** Strongly connected components with more than one package (Tarjan). */
    static List<List<String>> cycles(Map<String, Set<String>> graph) {
        Map<String, Integer> index = new TreeMap<>();
        Map<String, Integer> low = new TreeMap<>();
        Deque<String> stack = new ArrayDeque<>();
        Set<String> onStack = new TreeSet<>();
        List<List<String>> out = new ArrayList<>();
        int[] counter = {0};
        for (String v : graph.keySet()) {
            if (!index.containsKey(v)) {
                connect(v, graph, index, low, stack, onStack, out, counter);
            }
        }
        return out;
    }

    private static void connect(String v, Map<String, Set<String>> g, Map<String, Integer> index, Map<String, Integer> low,
                                Deque<String> stack, Set<String> onStack, List<List<String>> out, int[] counter) {
        index.put(v, counter[0]);
        low.put(v, counter[0]);
        counter[0]++;
        stack.push(v);
        onStack.add(v);
        for (String w : g.getOrDefault(v, Set.of())) {
            if (!index.containsKey(w)) {
                connect(w, g, index, low, stack, onStack, out, counter);
                low.put(v, Math.min(low.get(v), low.get(w)));
            } else if (onStack.contains(w)) {
                low.put(v, Math.min(low.get(v), index.get(w)));
            }
        }
        if (low.get(v).equals(index.get(v))) {
            List<String> component = new ArrayList<>();
            String w;
            do {
                w = stack.pop();
                onStack.remove(w);
                component.add(w);
            } while (!w.equals(v));
            if (component.size() > 1) {
                out.add(component);
            }
        }
    }
}
