package io.vportd.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A host-side process a test runs beside the guest (vportd itself, say): output streamed to
 * the test log and kept, {@link #awaitLine} with a deadline, and {@link #close()} that always
 * ends it and its children.
 */
public final class HostProcess implements AutoCloseable {

    private final Process process;
    private final LineLog log;

    private HostProcess(String name, Process process) {
        this.process = process;
        this.log = new LineLog(name, process.getInputStream());
    }

    /** Starts {@code command} (stderr merged into stdout, stdin from /dev/null). */
    public static HostProcess start(String name, List<String> command, Path workDir, Map<String, String> env) {
        ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(command))
                .redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        if (workDir != null) {
            pb.directory(workDir.toFile());
        }
        pb.environment().putAll(env);
        System.out.println("[" + name + "] starting: " + String.join(" ", command));
        try {
            return new HostProcess(name, pb.start());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + name + ": " + command, e);
        }
    }

    /** The java launcher of the JVM running the tests (JDK 25). */
    public static String javaLauncher() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    public Matcher awaitLine(Pattern pattern, Duration within) {
        return log.awaitLine(pattern, within);
    }

    public String output() {
        return log.text();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    public long pid() {
        return process.pid();
    }

    /** Waits for the process to exit by itself and returns its exit code; fails at the deadline. */
    public int awaitExit(Duration within) {
        try {
            if (!process.waitFor(within.toNanos(), TimeUnit.NANOSECONDS)) {
                throw new AssertionError(log.name() + " still running after " + within.toMillis() + " ms\n--- "
                        + log.name() + " output ---\n" + output());
            }
            log.awaitEnd(Duration.ofSeconds(5));
            return process.exitValue();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted waiting for " + log.name(), e);
        }
    }

    /** Asks politely (SIGTERM) and waits up to {@code grace}; returns the exit code. Forces after that. */
    public int stop(Duration grace) {
        process.destroy();
        try {
            if (!process.waitFor(grace.toNanos(), TimeUnit.NANOSECONDS)) {
                close();
            }
            process.waitFor(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return process.isAlive() ? -1 : process.exitValue();
    }

    /** Kills the process and its descendants (SIGKILL). */
    @Override
    public void close() {
        List<ProcessHandle> tree = new ArrayList<>();
        process.toHandle().descendants().forEach(tree::add);
        process.destroyForcibly();
        tree.forEach(ProcessHandle::destroyForcibly);
        try {
            process.waitFor(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
