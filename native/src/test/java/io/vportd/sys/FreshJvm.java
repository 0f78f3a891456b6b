package io.vportd.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Runs a probe's {@code main} in a JVM of its own, with this test's class path: for what a JVM
 * does the first time only (linking, generating classes), which a test's long-running JVM did
 * long ago.
 */
final class FreshJvm {

    private FreshJvm() {
    }

    /**
     * Runs {@code probe} with {@code args}; it must exit 0 and print, last, a line starting with
     * {@code label + " "}. Returns the number that follows.
     */
    static long lastNumber(Class<?> probe, String label, String... args) throws Exception {
        java.util.List<String> command = new java.util.ArrayList<>(java.util.List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), probe.getName()));
        command.addAll(java.util.List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "probe did not finish");
        assertEquals(0, p.exitValue(), out);
        String last = out.strip().lines().reduce((a, b) -> b).orElse("");
        assertTrue(last.startsWith(label + " "), out);
        return Long.parseLong(last.substring(label.length() + 1));
    }
}
