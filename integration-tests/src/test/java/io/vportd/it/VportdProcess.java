package io.vportd.it;

import io.vportd.testsupport.Await;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A vportd daemon started as its own process from the jar the build made
 * ({@code console-backend/target/vportd.jar}), with its log streamed to the test output and kept
 * for assertions. Closing it stops the daemon (SIGTERM, then SIGKILL).
 */
public final class VportdProcess implements AutoCloseable {

    private final Process process;
    private final StringBuffer log = new StringBuffer();
    private final Thread pump;
    private final String name;

    private VportdProcess(String name, Process process) {
        this.name = name;
        this.process = process;
        this.pump = Thread.ofPlatform().daemon().name("vportd-log-" + name).start(this::pumpLog);
    }

    /** The daemon jar of this checkout; fails with a clear message when the build did not make it. */
    public static Path jar() {
        Path jar = Rig.locate().repoRoot().resolve("console-backend/target/vportd.jar");
        if (!Files.isRegularFile(jar)) {
            throw new IllegalStateException(jar + " is missing: build it with mvn package (the verify phase does)");
        }
        return jar;
    }

    /**
     * Starts vportd with these arguments and waits until its vhost-user socket exists, and its
     * management socket listens when {@code --api-socket} is given (it comes up just after). For
     * the management socket the file is not enough: it exists from the bind, and a client that
     * connects before the listen is refused (seen in CI), so the wait is for vportd's own line
     * saying it listens.
     */
    public static VportdProcess start(String name, Path socket, List<String> args, Duration within) throws IOException {
        VportdProcess v = launch(name, socket, args);
        Process p = v.process;
        int api = args.indexOf("--api-socket");
        Path apiSocket = api >= 0 && api + 1 < args.size() ? Path.of(args.get(api + 1)) : null;
        try {
            Await.until("vportd to listen on " + socket, within, () -> {
                if (!p.isAlive()) {
                    throw new IllegalStateException("vportd exited with " + p.exitValue() + " before listening:\n" + v.log());
                }
                return Files.exists(socket)
                        && (apiSocket == null || v.log().contains("management API listening on " + apiSocket));
            });
        } catch (RuntimeException | Error e) {
            v.close();
            throw e;
        }
        return v;
    }

    /** Starts vportd with these arguments and returns at once (e.g. {@code --take-over}, whose socket exists already). */
    public static VportdProcess launch(String name, Path socket, List<String> args) throws IOException {
        List<String> all = new ArrayList<>(List.of("--socket-path", socket.toString()));
        all.addAll(args);
        return launchArgs(name, all);
    }

    /**
     * Starts {@code vportd --config FILE} and waits until its management API listens on
     * {@code api} (the devices' sockets come up before it).
     */
    public static VportdProcess startConfig(String name, Path config, Path api, Duration within) throws IOException {
        VportdProcess v = launchArgs(name, List.of("--config", config.toString()));
        try {
            v.awaitLog("management API listening on " + api, within);
        } catch (RuntimeException | Error e) {
            v.close();
            throw e;
        }
        return v;
    }

    /** Starts vportd with exactly these arguments and returns at once. */
    public static VportdProcess launchArgs(String name, List<String> args) throws IOException {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-jar", jar().toString()));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        return new VportdProcess(name, p);
    }

    /** Waits until the log has a line containing {@code text}; fails (with the log) if the process ends first. */
    public String awaitLog(String text, Duration within) {
        return Await.value(name + " to log '" + text + "'", within, () -> {
            for (String line : log().split("\n")) {
                if (line.contains(text)) {
                    return java.util.Optional.of(line);
                }
            }
            if (!process.isAlive()) {
                throw new IllegalStateException("vportd " + name + " exited with " + process.exitValue() + ":\n" + log());
            }
            return java.util.Optional.empty();
        });
    }

    /** Waits for the process to end and returns its exit status; fails if it is still running after {@code within}. */
    public int awaitExit(Duration within) {
        try {
            if (!process.waitFor(within.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new AssertionError("vportd " + name + " still runs after " + within.toSeconds() + " s:\n" + log());
            }
            pump.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
        return process.exitValue();
    }

    public long pid() {
        return process.pid();
    }

    private void pumpLog() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                log.append(line).append('\n');
                System.out.println("[vportd " + name + "] " + line);
            }
        } catch (IOException e) {
            log.append("(log stream ended: ").append(e.getMessage()).append(")\n");
        }
    }

    public String log() {
        return log.toString();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
            pump.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
    }
}
