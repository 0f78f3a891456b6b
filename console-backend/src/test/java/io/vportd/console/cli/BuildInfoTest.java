package io.vportd.console.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import org.junit.jupiter.api.Test;

class BuildInfoTest {

    @Test
    void theBuildFillsVersionAndCommit() {
        BuildInfo b = BuildInfo.current();
        assertTrue(b.version().matches("\\d+\\.\\d+\\.\\d+.*"), b.version());
        if (insideGitCheckout()) {
            // git describe --always --long: TAG-N-gHASH, or the bare hash without tags
            assertTrue(b.commit().matches("([\\w.-]+-\\d+-g)?[0-9a-f]{12}(-dirty)?"), b.commit());
        } else {
            assertEquals("unknown", b.commit());
        }
    }

    private static boolean insideGitCheckout() {
        for (java.nio.file.Path p = java.nio.file.Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (java.nio.file.Files.exists(p.resolve(".git"))) {
                return true;
            }
        }
        return false;
    }

    @Test
    void aJdkIsNamedAsSuch() {
        String kind = BuildInfo.runtimeKind(Set.of("java.base", "java.logging", "jdk.compiler", "jdk.jshell"), "/usr/lib/jvm/x");
        assertEquals("JDK (4 modules) at /usr/lib/jvm/x", kind);
    }

    @Test
    void aJlinkedImageListsItsModules() {
        String kind = BuildInfo.runtimeKind(Set.of("jdk.unsupported", "java.base", "jdk.httpserver", "java.logging"),
                "/opt/vportd/runtime");
        assertEquals("jlinked image (java.base, java.logging, jdk.httpserver, jdk.unsupported) at /opt/vportd/runtime", kind);
    }

    @Test
    void theTestJvmIsAJdk() {
        assertTrue(BuildInfo.runtimeKind(BuildInfo.systemModules(), "h").startsWith("JDK ("));
    }

    @Test
    void versionTextNamesEveryFact() {
        String text = new BuildInfo("1.2.3", "abcdef012345").versionText("25.0.1+8-LTS", "Eclipse Adoptium", "JDK (70 modules) at /j");
        assertEquals("""
                vportd 1.2.3
                commit:  abcdef012345
                java:    25.0.1+8-LTS (Eclipse Adoptium)
                runtime: JDK (70 modules) at /j""", text);
        String live = BuildInfo.current().versionText();
        assertTrue(live.contains("java:    " + Runtime.version()), live);
        assertNotEquals(-1, live.indexOf("runtime: JDK ("), live);
    }
}
