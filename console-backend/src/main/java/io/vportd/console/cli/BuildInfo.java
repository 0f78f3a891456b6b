package io.vportd.console.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.module.ModuleFinder;
import java.lang.module.ModuleReference;
import java.nio.file.Path;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;

/**
 * What {@code vportd --version} prints: the build (version and git commit, written into
 * {@code build.properties} by Maven) and the Java runtime it runs on, so that an operator can tell a
 * packaged vportd (a jlinked runtime holding only the modules vportd needs) from a developer one
 * started on a full JDK.
 *
 * @param version the project version
 * @param commit  {@code git describe --always --dirty} of the tree built, or {@code unknown}
 */
public record BuildInfo(String version, String commit) {

    /** The modules a JDK has and a jlinked vportd runtime does not: the compiler's presence tells them apart. */
    static final String JDK_MARKER_MODULE = "jdk.compiler";

    private static final String RESOURCE = "build.properties";

    /** The build this class was compiled in; {@code unknown} fields when the resource is missing or unfilled. */
    public static BuildInfo current() {
        Properties p = new Properties();
        try (InputStream in = BuildInfo.class.getResourceAsStream(RESOURCE)) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + RESOURCE, e);
        }
        return new BuildInfo(filled(p.getProperty("version")), filled(p.getProperty("commit")));
    }

    private static String filled(String value) {
        return value == null || value.isBlank() || value.startsWith("${") ? "unknown" : value.strip();
    }

    /**
     * How the Java runtime was put together, from the names of its system modules: a full JDK
     * (it has {@value #JDK_MARKER_MODULE}) or a jlinked image, listed module by module.
     */
    static String runtimeKind(Set<String> systemModules, String javaHome) {
        if (systemModules.contains(JDK_MARKER_MODULE)) {
            return "JDK (" + systemModules.size() + " modules) at " + javaHome;
        }
        return "jlinked image (" + String.join(", ", new TreeSet<>(systemModules)) + ") at " + javaHome;
    }

    /** The names of the running Java runtime's system modules. */
    static Set<String> systemModules() {
        Set<String> names = new TreeSet<>();
        for (ModuleReference m : ModuleFinder.ofSystem().findAll()) {
            names.add(m.descriptor().name());
        }
        return names;
    }

    /** The --version text for the running JVM. */
    public String versionText() {
        return versionText(Runtime.version().toString(), System.getProperty("java.vendor", "unknown"),
                runtimeKind(systemModules(), Path.of(System.getProperty("java.home", "")).toString()));
    }

    /** The --version text: one line per fact. */
    String versionText(String javaVersion, String javaVendor, String runtimeKind) {
        return "vportd " + version + "\n"
                + "commit:  " + commit + "\n"
                + "java:    " + javaVersion + " (" + javaVendor + ")\n"
                + "runtime: " + runtimeKind;
    }
}
