package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.cli.BuildInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * The .tar.gz and .deb of this build, made once per test JVM by {@code packaging/build} from the
 * jar the reactor built (PackageInstallIT and SystemdUnitsIT share them).
 */
public record Packages(Path tarball, Path deb, String version) {

    private static final Duration BUILD = Duration.ofMinutes(8);
    private static Packages built;

    /** Builds the packages on first use; later calls return the same files. */
    public static synchronized Packages build(Rig rig) {
        if (built != null) {
            return built;
        }
        Path jar = rig.repoRoot().resolve("console-backend/target/vportd.jar");
        assertTrue(Files.isRegularFile(jar), jar + " missing: the reactor builds it before the integration tests");
        Path dist;
        try {
            dist = Files.createTempDirectory("vportd-it-dist");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        String jdk = Path.of(System.getProperty("java.home")).toString();
        try (HostProcess p = HostProcess.start("package-build",
                List.of(rig.repoRoot().resolve("packaging/build").toString(), "--out", dist.toString()),
                rig.repoRoot(), Map.of("JAVA_HOME", jdk))) {
            assertEquals(0, p.awaitExit(BUILD), "packaging/build failed:\n" + p.output());
        }
        String version = BuildInfo.current().version();
        Path tarball = dist.resolve("vportd-" + version + "-linux-x86_64.tar.gz");
        Path deb = dist.resolve("vportd_" + debVersion(version) + "_amd64.deb");
        assertTrue(Files.isRegularFile(tarball), "no " + tarball);
        assertTrue(Files.isRegularFile(deb), "no " + deb);
        built = new Packages(tarball, deb, version);
        Path made = dist;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try (var files = Files.list(made)) {
                for (Path f : files.toList()) {
                    Files.deleteIfExists(f);
                }
                Files.deleteIfExists(made);
            } catch (IOException e) {
                System.err.println("cannot remove " + made + ": " + e);
            }
        }));
        return built;
    }

    /** Debian's form of a version: '~' for '-', so that 0.1.0~SNAPSHOT sorts before 0.1.0. */
    public static String debVersion(String version) {
        return version.replace('-', '~');
    }
}
