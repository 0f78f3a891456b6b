package io.vportd.it;

import io.vportd.testsupport.Await;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One real Linux guest under QEMU, booted by {@code integration-tests/rig/run-guest}.
 *
 * <pre>{@code
 * try (Guest g = Guest.builder().scenario(script).qemuArgs(args).socketDir(dir)
 *         .timeout(Duration.ofSeconds(60)).start()) {
 *     g.awaitMark("ready", Duration.ofSeconds(30));
 *     GuestResult r = g.awaitExit().assertSucceeded();
 * }
 * }</pre>
 *
 * The serial console is streamed line by line to the test log (stdout, prefixed with the guest
 * name) and kept. Scenario scripts talk to the test through marks: a console line
 * {@code VPORTD-MARK <key> [value]}. {@link #close()} always ends QEMU and everything the rig
 * started for it.
 */
public final class Guest implements AutoCloseable {

    public static final String MARK = "VPORTD-MARK";
    private static final AtomicInteger SEQ = new AtomicInteger();
    private static final Duration GRACE = Duration.ofSeconds(30);

    private final String name;
    private final Process process;
    private final Path workDir;
    private final Duration timeout;
    private final long startNanos;
    private final LineLog console;

    private Guest(String name, Process process, Path workDir, Duration timeout) {
        this.name = name;
        this.process = process;
        this.workDir = workDir;
        this.timeout = timeout;
        this.startNanos = System.nanoTime();
        this.console = new LineLog(name, process.getInputStream());
    }

    public static Builder builder() {
        return new Builder();
    }

    public String name() {
        return name;
    }

    /** Everything the console printed so far. */
    public String output() {
        return console.text();
    }

    /** Waits for a console line matching {@code pattern} (searched from the start) and returns its matcher. */
    public Matcher awaitLine(Pattern pattern, Duration within) {
        return console.awaitLine(pattern, within);
    }

    /** Waits for the mark {@code VPORTD-MARK key [value]} and returns its value ("" when none). */
    public String awaitMark(String key, Duration within) {
        Matcher m = awaitLine(Pattern.compile("^" + MARK + " " + Pattern.quote(key) + "(?: (.*))?$"), within);
        return m.group(1) == null ? "" : m.group(1);
    }

    static Optional<String> markValue(String line, String key) {
        String prefix = MARK + " " + key;
        if (!line.startsWith(prefix)) {
            return Optional.empty();
        }
        if (line.length() == prefix.length()) {
            return Optional.of("");
        }
        return line.charAt(prefix.length()) == ' ' ? Optional.of(line.substring(prefix.length() + 1)) : Optional.empty();
    }

    /**
     * Waits for QEMU to end (its own timeout plus a grace period) and returns the guest's
     * status and the whole console output. A guest that outlives that is killed and fails.
     */
    public GuestResult awaitExit() {
        long deadline = startNanos + timeout.plus(GRACE).toNanos();
        try {
            if (!process.waitFor(Await.nanosLeft(deadline), TimeUnit.NANOSECONDS)) {
                close();
                throw new AssertionError("guest " + name + " still running " + GRACE.toSeconds()
                        + " s after its timeout; killed\n--- guest output ---\n" + output());
            }
            console.awaitEnd(Duration.ofSeconds(10));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            close();
            throw new AssertionError("interrupted waiting for guest " + name, e);
        }
        return new GuestResult(process.exitValue(), output());
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** The QEMU processes this guest's rig runs (one while it runs): to kill QEMU outright, as a crash would. */
    public List<ProcessHandle> qemuProcesses() {
        return process.toHandle().descendants()
                .filter(h -> h.info().command().map(c -> c.contains("qemu-system")).orElse(false))
                .toList();
    }

    /** Ends QEMU and the rig's processes for this guest (forcibly), and removes its work folder. */
    @Override
    public void close() {
        List<ProcessHandle> tree = new ArrayList<>();
        process.toHandle().descendants().forEach(tree::add);
        if (process.isAlive()) {
            process.destroy(); // run-guest traps TERM and stops QEMU cleanly
            try {
                process.waitFor(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        process.destroyForcibly();
        for (ProcessHandle h : tree) {
            h.destroyForcibly();
        }
        try {
            process.waitFor(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try (var walk = Files.walk(workDir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException | UncheckedIOException ignored) {
            // best effort: the folder is in the build's target directory
        }
    }

    /** Builds and starts a {@link Guest}. */
    public static final class Builder {
        private String scenario;
        private final List<String> qemuArgs = new ArrayList<>();
        private Duration timeout = Duration.ofSeconds(60);
        private Path socketDir;
        private String name;
        private int memoryMiB = 512;

        private Builder() {
        }

        /** The scenario script (busybox sh) run as {@code /scenario}; its exit status is the guest's. */
        public Builder scenario(String script) {
            this.scenario = Objects.requireNonNull(script);
            return this;
        }

        public Builder qemuArgs(String... args) {
            qemuArgs.addAll(List.of(args));
            return this;
        }

        public Builder qemuArgs(List<String> args) {
            qemuArgs.addAll(args);
            return this;
        }

        /** Whole seconds, at least 1; the rig kills QEMU when it runs out. */
        public Builder timeout(Duration t) {
            if (t.toSeconds() < 1) {
                throw new IllegalArgumentException("timeout must be at least 1 s: " + t);
            }
            this.timeout = t;
            return this;
        }

        /** The folder holding Unix sockets QEMU uses; bind-mounted at the same path in QEMU's chroot. */
        public Builder socketDir(Path dir) {
            this.socketDir = dir;
            return this;
        }

        /** Name used to prefix console lines in the test log. */
        public Builder name(String n) {
            this.name = n;
            return this;
        }

        public Builder memoryMiB(int mib) {
            this.memoryMiB = mib;
            return this;
        }

        public Guest start() {
            Objects.requireNonNull(scenario, "scenario");
            Rig rig = Rig.require();
            String n = name != null ? name : "guest-" + SEQ.incrementAndGet();
            try {
                Path work = Files.createTempDirectory("vportd-it-" + n.replaceAll("[^A-Za-z0-9_.-]", "_") + "-");
                Path script = work.resolve("scenario.sh");
                Files.writeString(script, scenario.endsWith("\n") ? scenario : scenario + "\n");
                List<String> cmd = new ArrayList<>();
                cmd.add(rig.runGuestScript().toString());
                cmd.add("--scenario");
                cmd.add(script.toString());
                cmd.add("--timeout");
                cmd.add(Long.toString(timeout.toSeconds()));
                cmd.add("--memory");
                cmd.add(Integer.toString(memoryMiB));
                if (socketDir != null) {
                    cmd.add("--socket-dir");
                    cmd.add(socketDir.toString());
                }
                cmd.add("--");
                cmd.addAll(qemuArgs);
                System.out.println("[" + n + "] starting: " + String.join(" ", cmd));
                Process p = new ProcessBuilder(cmd)
                        .redirectErrorStream(true)
                        .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                        .start();
                return new Guest(n, p, work, timeout);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot start guest " + n, e);
            }
        }
    }
}
