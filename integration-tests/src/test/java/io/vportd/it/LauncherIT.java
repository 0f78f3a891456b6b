package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 13, launcher defaults: {@code bin/vportd} runs the daemon with the package's measured JVM
 * flags and an AOT cache trained for the jar it runs, trained again when the jar changes (the JVM
 * would silently ignore a cache of another jar), and vportd.jar holds no class file the cache
 * cannot keep. The launcher runs from a copy of the tree's launcher, training script and jar in a
 * temporary folder, so the tree's own cache is left alone.
 */
class LauncherIT {

    private static final Duration RUN = Duration.ofMinutes(2);

    /** Every class file of vportd.jar can go into an AOT cache: none is older than Java 6 (picocli's were). */
    @Test
    void theJarHoldsNoClassFileOlderThanJava6() throws IOException {
        Path jar = Rig.locate().repoRoot().resolve("console-backend/target/vportd.jar");
        List<String> old = new ArrayList<>();
        int classes = 0;
        try (InputStream in = Files.newInputStream(jar); ZipInputStream zip = new ZipInputStream(in)) {
            ZipEntry e;
            while ((e = zip.getNextEntry()) != null) {
                if (!e.getName().endsWith(".class") || e.getName().startsWith("META-INF/")) {
                    continue;
                }
                byte[] head = zip.readNBytes(8);
                int major = ((head[6] & 0xff) << 8) | (head[7] & 0xff);
                classes++;
                if (major < 50) {
                    old.add(e.getName() + " (" + major + ")");
                }
            }
        }
        assertTrue(classes > 1000, "only " + classes + " classes in " + jar);
        assertTrue(old.isEmpty(), old.size() + " class files older than Java 6, e.g. " + old.subList(0, Math.min(5, old.size())));
    }

    @Test
    void theLauncherTrainsACacheForItsJarUsesItAndTrainsAgainWhenTheJarChanges(@TempDir Path tree) throws Exception {
        Path root = Rig.locate().repoRoot();
        Path launcher = copy(root, tree, "bin/vportd");
        copy(root, tree, "packaging/aot-train");
        Path jar = copy(root, tree, "console-backend/target/vportd.jar");
        Path cache = tree.resolve("console-backend/target/vportd.aot");

        // The first run trains. Its own VPORTD_JAVA_OPTS stay out of the training: a module added
        // there (as a flight recording adds jdk.jfr) would make a cache no plain run can use.
        String first = run(launcher, Map.of("VPORTD_JAVA_OPTS", "--add-modules=jdk.jfr"));
        assertTrue(first.contains("training the AOT cache"), first);
        assertFalse(first.contains("training failed"), first);
        assertTrue(Files.isRegularFile(cache), "no cache after the first run:\n" + first);
        assertTrue(Files.isRegularFile(tree.resolve("console-backend/target/vportd.aot.jar")),
                "the launcher noted no jar identity beside the cache");

        // --version takes the command line's cache, with picocli's classes, and the measured flags are in force.
        Path loads = tree.resolve("class-load.log");
        String used = run(launcher, Map.of("VPORTD_JAVA_OPTS",
                "-Xlog:aot=info -Xlog:class+load=info:file=" + loads + " -XX:+PrintCommandLineFlags"));
        assertFalse(used.contains("training the AOT cache"), "trained again with an unchanged jar:\n" + used);
        assertTrue(used.contains("Using AOT-linked classes: true"), used);
        List<String> picocli = Files.readAllLines(loads).stream().filter(l -> l.contains(" picocli.CommandLine ")).toList();
        assertTrue(picocli.size() == 1 && picocli.getFirst().contains("shared objects file"),
                "picocli.CommandLine did not come from the AOT cache: " + picocli);
        assertTrue(Files.isRegularFile(tree.resolve("console-backend/target/vportd-cli.aot")),
                "no cache of the command line beside the daemon's");

        // A daemon's run takes the daemon's cache, which holds no picocli: its usual command line
        // never builds picocli's model, and each class of a cache is loaded at every start. Here
        // --version after another option: the launcher picks the daemon's cache, picocli prints.
        Path daemonLoads = tree.resolve("class-load-daemon.log");
        String daemon = run(List.of(launcher.toString(), "--log-level", "info", "--version"), Map.of("VPORTD_JAVA_OPTS",
                "-Xlog:aot=info -Xlog:class+load=info:file=" + daemonLoads));
        assertTrue(daemon.contains("Using AOT-linked classes: true"), daemon);
        List<String> loaded = Files.readAllLines(daemonLoads);
        assertTrue(loaded.stream().anyMatch(l -> l.contains(" io.vportd.console.Main ") && l.contains("shared objects file")),
                "io.vportd.console.Main did not come from the daemon's cache");
        List<String> daemonPicocli = loaded.stream().filter(l -> l.contains(" picocli.CommandLine ")).toList();
        assertTrue(daemonPicocli.size() == 1 && !daemonPicocli.getFirst().contains("shared objects file"),
                "picocli.CommandLine came from the daemon's cache (or was not loaded): " + daemonPicocli);
        // Neither cache holds training data: profiles of the training's start-up code, replayed and
        // compiled at every start, cost start-up CPU and memory and help no later work.
        for (List<String> args : List.of(List.of("--version"), List.of("--log-level", "info", "--version"))) {
            List<String> cmd = new java.util.ArrayList<>(List.of(launcher.toString()));
            cmd.addAll(args);
            String info = run(cmd, Map.of("VPORTD_JAVA_OPTS", "-XX:+UnlockDiagnosticVMOptions -XX:+AOTPrintTrainingInfo"));
            int at = info.indexOf("Archived TrainingData Dictionary");
            assertTrue(at >= 0, "the JVM printed no training data dictionary for " + args + ":\n" + info);
            List<String> entries = info.substring(at).lines().filter(l -> l.matches("\\s*\\d+: 0x.*")).toList();
            assertTrue(entries.isEmpty(), () -> "the cache for " + args + " holds " + entries.size()
                    + " training data entries, the first: " + entries.getFirst());
        }
        for (String flag : List.of("-XX:+UseSerialGC", "-XX:MaxHeapSize=33554432", "-XX:+UseCompactObjectHeaders",
                "-XX:ThreadStackSize=256", "-XX:MaxMetaspaceSize=33554432")) {
            assertTrue(used.contains(flag), flag + " not in force:\n" + used.lines().filter(l -> l.startsWith("-XX")).toList());
        }

        // Someone who may not write beside the jar (here: nobody, the tree being root's) uses the
        // fresh cache all the same; only training needs to write. Needs root to switch users.
        if ("root".equals(System.getProperty("user.name"))) {
            try (var paths = Files.walk(tree)) {
                for (Path p : paths.toList()) {
                    Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(
                            Files.isDirectory(p) || Files.isExecutable(p) ? "rwxr-xr-x" : "rw-r--r--"));
                }
            }
            String other = run(List.of("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    launcher.toString(), "--version"), Map.of("VPORTD_JAVA_OPTS", "-Xlog:aot=info"));
            assertFalse(other.contains("training the AOT cache"), other);
            assertTrue(other.contains("Using AOT-linked classes: true"), "a user who cannot write there ran without "
                    + "the cache:\n" + other);
        }

        // VPORTD_AOT=off: no cache.
        String off = run(launcher, Map.of("VPORTD_AOT", "off", "VPORTD_JAVA_OPTS", "-Xlog:aot=info"));
        assertFalse(off.contains("Using AOT-linked classes: true"), off);

        // A rebuilt jar (another modification time): trained again, and the new cache is used.
        Files.setLastModifiedTime(jar, FileTime.from(Instant.now().plusSeconds(60)));
        String again = run(launcher, Map.of("VPORTD_JAVA_OPTS", "-Xlog:aot=info"));
        assertTrue(again.contains("training the AOT cache"), again);
        assertTrue(again.contains("Using AOT-linked classes: true"), again);
    }

    /** Copies the repository's {@code path} to the same place under {@code tree}, keeping its mode. */
    private static Path copy(Path root, Path tree, String path) throws IOException {
        Path to = tree.resolve(path);
        Files.createDirectories(to.getParent());
        Files.copy(root.resolve(path), to, StandardCopyOption.COPY_ATTRIBUTES);
        if (!path.endsWith(".jar")) {
            Files.setPosixFilePermissions(to, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        return to;
    }

    /** {@code launcher --version} with {@code env}: its output (stderr merged); it must succeed. */
    private static String run(Path launcher, Map<String, String> env) {
        return run(List.of(launcher.toString(), "--version"), env);
    }

    private static String run(List<String> command, Map<String, String> env) {
        try (HostProcess p = HostProcess.start("bin/vportd", command, null, env)) {
            int code = p.awaitExit(RUN);
            String out = p.output();
            assertEquals(0, code, out);
            assertTrue(out.contains("vportd "), out);
            return out;
        }
    }
}
