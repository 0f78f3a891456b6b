package io.vportd.it;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * The real-systemd rig ({@code integration-tests/rig/systemd/}): Debian bookworm's systemd 252
 * booted as PID 1 of a private PID + mount namespace, with a host folder shared at
 * {@code /vportd-share} and this JDK mounted at its own path. {@link #require()} gates a test
 * the way {@link Rig#require()} does (with {@code CI=true} a missing piece fails the test,
 * elsewhere it skips it); {@link #boot} starts a system and {@link Booted#close()} kills its init.
 */
public final class SystemdRig {

    /** Where the share folder appears inside the booted tree. */
    public static final String SHARE_IN_TREE = "/vportd-share";

    private static volatile SystemdRig checked;

    private final Path scripts;
    private final Path jdk;

    private SystemdRig(Path scripts, Path jdk) {
        this.scripts = scripts;
        this.jdk = jdk;
    }

    /** The usable rig, or the calling test ends: failed under {@code CI=true}, skipped elsewhere. */
    public static SystemdRig require() {
        SystemdRig rig = checked;
        if (rig != null) {
            return rig;
        }
        Path root = Rig.locate().repoRoot();
        String missing;
        SystemdRig found = null;
        if (root == null) {
            missing = "repository root not found (set -Dvportd.root or VPORTD_ROOT)";
        } else {
            found = new SystemdRig(root.resolve("integration-tests/rig/systemd"), Path.of(System.getProperty("java.home")));
            Result r = found.script(Duration.ofSeconds(30), "boot", "--check");
            missing = r.status() == 0 ? null : r.output().strip();
        }
        if (missing != null) {
            String message = "real-systemd rig not usable: " + missing
                    + " (prepare it with ./run setup or integration-tests/rig/systemd/setup)";
            if ("true".equalsIgnoreCase(System.getenv("CI"))) {
                fail(message);
            }
            Assumptions.abort(message);
        }
        checked = found;
        return found;
    }

    /** The JDK the booted tree sees at the same path (this test JVM's). */
    public Path jdk() {
        return jdk;
    }

    /** Boots a system: its run folder {@code run} (console log, overlay), {@code share} mounted at {@link #SHARE_IN_TREE}. */
    public Booted boot(Path run, Path share) {
        Result r = script(Duration.ofSeconds(150), "boot", run.toString(), share.toString());
        if (r.status() != 0) {
            fail("systemd rig did not boot (status " + r.status() + "):\n" + r.output());
        }
        return new Booted(run);
    }

    /** A command's exit status and its output (stdout and stderr together). */
    public record Result(int status, String output) {
    }

    private Result script(Duration within, String name, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(scripts.resolve(name).toString());
        cmd.addAll(List.of(args));
        return run(cmd, within);
    }

    private Result run(List<String> cmd, Duration within) {
        try {
            Path out = Files.createTempFile("vportd-sdrig", ".out");
            try {
                ProcessBuilder pb = new ProcessBuilder(cmd)
                        .redirectErrorStream(true)
                        .redirectOutput(out.toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
                Map<String, String> env = pb.environment();
                env.put("VPORTD_SD_JDK", jdk.toString());
                Process p = pb.start();
                if (!p.waitFor(within.toMillis(), TimeUnit.MILLISECONDS)) {
                    p.destroyForcibly();
                    return new Result(124, String.join(" ", cmd) + ": no exit within " + within + "\n"
                            + Files.readString(out, StandardCharsets.UTF_8));
                }
                return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
            } finally {
                Files.deleteIfExists(out);
            }
        } catch (IOException e) {
            return new Result(127, "cannot run " + cmd + ": " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(130, "interrupted: " + cmd);
        }
    }

    /** A booted system. {@link #close()} kills its init (and so the whole namespace). */
    public final class Booted implements AutoCloseable {

        private final Path run;

        private Booted(Path run) {
            this.run = run;
        }

        /** Runs {@code command} inside (PID and mount namespaces, the tree's root). */
        public Result exec(Duration within, String... command) {
            List<String> cmd = new ArrayList<>();
            cmd.add(scripts.resolve("exec").toString());
            cmd.add(run.toString());
            cmd.addAll(List.of(command));
            return SystemdRig.this.run(cmd, within);
        }

        /** {@link #exec} that must succeed; returns its output. */
        public String ok(String... command) {
            Result r = exec(Duration.ofSeconds(90), command);
            if (r.status() != 0) {
                fail(String.join(" ", command) + " exited " + r.status() + ":\n" + r.output());
            }
            return r.output();
        }

        /** One property of a unit ({@code systemctl show -p NAME --value}). */
        public String property(String unit, String name) {
            return ok("systemctl", "show", "-p", name, "--value", unit).strip();
        }

        /** The unit's journal and status, for failure messages. */
        public String diagnostics(String unit) {
            return exec(Duration.ofSeconds(30), "systemctl", "status", "--no-pager", "-l", unit).output()
                    + exec(Duration.ofSeconds(30), "journalctl", "--no-pager", "-n", "80", "-u", unit).output();
        }

        @Override
        public void close() {
            Result r = script(Duration.ofSeconds(30), "stop", run.toString());
            if (r.status() != 0) {
                throw new AssertionError("systemd rig did not stop:\n" + r.output());
            }
        }
    }
}
