package io.vportd.it;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * Where the real-guest rig lives and whether it can be used.
 *
 * <p>The rig is {@code integration-tests/rig/} (scripts) plus its cache (built by
 * {@code integration-tests/rig/setup}). {@link #require()} is the gate every guest test passes
 * first: with {@code CI=true} a missing piece fails the test, elsewhere it skips it; either way
 * the message names the missing piece.
 */
public final class Rig {

    private static volatile Rig checked;

    private final Path repoRoot;

    private Rig(Path repoRoot) {
        this.repoRoot = repoRoot;
    }

    /** The repository root: {@code -Dvportd.root}, {@code $VPORTD_ROOT}, or the first parent holding the rig. */
    public static Rig locate() {
        String configured = System.getProperty("vportd.root");
        if (configured == null || configured.isBlank()) {
            configured = System.getenv("VPORTD_ROOT");
        }
        if (configured != null && !configured.isBlank()) {
            Path p = Path.of(configured).toAbsolutePath().normalize();
            if (Files.isRegularFile(p.resolve("integration-tests/rig/run-guest"))) {
                return new Rig(p);
            }
        }
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("integration-tests/rig/run-guest"))) {
                return new Rig(p);
            }
        }
        return new Rig(null);
    }

    /**
     * Returns the usable rig, or ends the calling test: a failure when {@code CI=true}, a skip
     * (JUnit assumption) otherwise. The check runs once per JVM.
     */
    public static Rig require() {
        Rig rig = checked;
        if (rig != null) {
            return rig;
        }
        Rig found = locate();
        String missing = found.missing();
        if (missing != null) {
            String message = "real-guest rig not usable: " + missing
                    + " (prepare it with ./run setup or integration-tests/rig/setup)";
            if ("true".equalsIgnoreCase(System.getenv("CI"))) {
                fail(message);
            }
            Assumptions.abort(message);
        }
        checked = found;
        return found;
    }

    /** Null when usable, else one line naming the missing piece. */
    public String missing() {
        if (repoRoot == null) {
            return "integration-tests/rig/run-guest not found (set -Dvportd.root or VPORTD_ROOT to the repository root)";
        }
        Path script = runGuestScript();
        if (!Files.isExecutable(script)) {
            return script + " is not executable";
        }
        try {
            Process p = new ProcessBuilder(script.toString(), "--check")
                    .redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .start();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return script + " --check did not answer within 30 s";
            }
            if (p.exitValue() != 0) {
                String text = new String(out, StandardCharsets.UTF_8).strip();
                return text.isEmpty() ? script + " --check exited " + p.exitValue() : text;
            }
            return null;
        } catch (IOException e) {
            return "cannot run " + script + ": " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted while checking the rig";
        }
    }

    public Path repoRoot() {
        return repoRoot;
    }

    public Path runGuestScript() {
        return repoRoot.resolve("integration-tests/rig/run-guest");
    }
}
