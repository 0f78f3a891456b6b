package io.vportd.vhost;

import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.File;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.spi.ToolProvider;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * jnativescan (JDK) over native, vring-fastpath and vhost-user: restricted calls only in
 * io.vportd.sys (the native module).
 */
class NativeAccessScanTest {

    private static final List<String> MODULES = List.of("native", "vring-fastpath", "vhost-user");

    /** A module's main classes: {@code <module>/target/classes} in the reactor, {@code <module>-<version>.jar} otherwise. */
    private static boolean isModuleMainClasses(String entry) {
        Path p = Path.of(entry);
        String name = p.getFileName().toString();
        for (String m : MODULES) {
            if (name.equals("classes") && p.getParent() != null && p.getParent().getParent() != null
                    && p.getParent().getParent().getFileName().toString().equals(m)) {
                return true;
            }
            if (name.startsWith(m + "-") && name.endsWith(".jar") && !name.endsWith("-tests.jar")) {
                return true;
            }
        }
        return false;
    }

    @Test
    void restrictedCallsOnlyInTheSysPackage() {
        ToolProvider scan = ToolProvider.findFirst("jnativescan").orElseThrow();
        String cp = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(NativeAccessScanTest::isModuleMainClasses)
                .collect(Collectors.joining(File.pathSeparator));
        assertEquals(MODULES.size(), cp.split(File.pathSeparator).length,
                "the main classes of " + MODULES + " on the scanned class path: " + cp);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int rc = scan.run(new PrintWriter(out), new PrintWriter(err), "--class-path", cp);
        assertEquals(0, rc, err.toString());
        List<String> classes = out.toString().lines()
                .filter(l -> l.startsWith("  ") && !l.startsWith("    "))
                .map(String::strip)
                .toList();
        assertFalse(classes.isEmpty(), "jnativescan found the bindings:\n" + out);
        for (String c : classes) {
            assertTrue(c.startsWith("io.vportd.sys."), "restricted call outside io.vportd.sys: " + c + "\n" + out);
        }
    }
}
