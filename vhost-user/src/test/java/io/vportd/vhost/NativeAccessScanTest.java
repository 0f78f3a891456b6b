package io.vportd.vhost;

import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.File;
import java.util.Arrays;
import java.util.List;
import java.util.spi.ToolProvider;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** jnativescan (JDK) over vring-fastpath and vhost-user: restricted calls only in io.vportd.sys. */
class NativeAccessScanTest {

    @Test
    void restrictedCallsOnlyInTheSysPackage() {
        ToolProvider scan = ToolProvider.findFirst("jnativescan").orElseThrow();
        String cp = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(e -> e.contains("vring-fastpath") || e.contains("vhost-user"))
                .filter(e -> !e.endsWith("test-classes") && !e.endsWith("-tests.jar"))
                .collect(Collectors.joining(File.pathSeparator));
        assertFalse(cp.isEmpty(), "module classes on the test class path");
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
