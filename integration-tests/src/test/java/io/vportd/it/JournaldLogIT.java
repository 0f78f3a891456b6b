package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vportd.testsupport.Await;
import io.vportd.vhost.testing.TestFrontend;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code log=journal} against a real journald: systemd 252 and its journald booted by the
 * real-systemd rig ({@code integration-tests/rig/systemd/}), vportd's jar run inside as a
 * transient unit ({@code systemd-run}) with the default journal socket
 * ({@code /run/systemd/journal/socket}, no {@code VPORTD_JOURNAL_SOCKET}), and a console port
 * whose endpoint is {@code null} and whose log is the journal. No guest: the host plays QEMU's
 * part with the vhost-user {@link TestFrontend} through the shared folder and writes characters
 * to the console's {@code emerg_wr} config field, as a guest's early console does; vportd turns
 * each into console output, and the port's log sends the lines to journald. The entries are
 * read back inside with {@code journalctl -o json} and must carry the message and vportd's
 * fields, arrive over the native protocol ({@code _TRANSPORT=journal}) from vportd's process
 * ({@code _SYSTEMD_UNIT}), and a partial line (a prompt) must be sent after its wait. With
 * journald's sockets and service stopped, the same port spec stops vportd's start-up with the
 * reason.
 */
class JournaldLogIT {

    private static final String UNIT = "vportd-journal-it.service";
    private static final String PORT_NAME = "io.vportd.journal-test";
    private static final int PORT = 1;
    private static final int MAX_PORTS = 2;
    private static final int QUEUES = 2 * (MAX_PORTS + 1);
    private static final String SOCKET_IN_TREE = SystemdRig.SHARE_IN_TREE + "/vportd.sock";
    private static final Duration STEP = Duration.ofSeconds(30);
    private static final ObjectMapper JSON = new ObjectMapper();

    private SystemdRig rig;
    private Path run;
    private Path share;
    private SystemdRig.Booted sys;

    @BeforeEach
    void prepare() throws IOException {
        rig = SystemdRig.require();
        run = Files.createTempDirectory("vportd-journald-it");
        share = Files.createDirectories(run.resolve("share"));
    }

    @AfterEach
    void tearDown() throws IOException {
        try {
            if (sys != null) {
                sys.close(); // kills the namespace's init, and with it everything inside
            }
        } finally {
            deleteTree(run);
        }
    }

    @Test
    @Timeout(120)
    void consoleLinesReachJournaldWithThePortsFields() throws IOException {
        Files.copy(VportdProcess.jar(), share.resolve("vportd.jar"));
        sys = rig.boot(run, share);
        sys.ok("systemd-run", "--unit=" + UNIT, "--property=TimeoutStopSec=10",
                rig.jdk() + "/bin/java", "--enable-native-access=ALL-UNNAMED",
                "-jar", SystemdRig.SHARE_IN_TREE + "/vportd.jar",
                "--socket-path", SOCKET_IN_TREE, "--max-ports", Integer.toString(MAX_PORTS),
                "--port", "nr=" + PORT + ",name=" + PORT_NAME + ",console,null,log=journal");
        Path socket = share.resolve("vportd.sock");
        Await.until("vportd (" + UNIT + ") to listen on " + SOCKET_IN_TREE, STEP, () -> {
            String state = sys.exec(STEP, "systemctl", "is-active", UNIT).output().strip();
            if (!state.equals("active") && !state.equals("activating")) {
                throw new AssertionError(UNIT + " is " + state + "\n" + sys.diagnostics(UNIT));
            }
            return Files.exists(socket);
        });

        List<String> lines = List.of("vportd to journald: first line", "second line, UTF-8 kept: \u00e9t\u00e9 \u2713");
        String prompt = "login: "; // no newline: sent once it has waited a second
        try (TestFrontend frontend = TestFrontend.connect(socket, QUEUES, 12)) {
            StringBuilder out = new StringBuilder();
            lines.forEach(l -> out.append(l).append('\n'));
            out.append(prompt);
            for (byte b : out.toString().getBytes(StandardCharsets.UTF_8)) {
                // one character per config write at emerg_wr (offset 8), as a guest's early console writes
                frontend.setConfig(8, new byte[] {b, 0, 0, 0});
            }

            List<JsonNode> entries = Await.value("three entries of " + PORT_NAME + " in the journal", STEP, () -> {
                List<JsonNode> got = journal();
                return got.size() >= 3 ? Optional.of(got) : Optional.empty();
            });
            System.out.println("[journald-it] journalctl -o json: " + entries);
            assertEquals(3, entries.size(), () -> "exactly the two lines and the prompt: " + entries);
            String pid = sys.property(UNIT, "MainPID");
            List<String> expected = new ArrayList<>(lines);
            expected.add(prompt);
            for (int i = 0; i < expected.size(); i++) {
                JsonNode e = entries.get(i);
                assertEquals(expected.get(i), text(e, "MESSAGE"), "MESSAGE of entry " + i);
                assertEquals("6", text(e, "PRIORITY"));
                assertEquals("vportd", text(e, "SYSLOG_IDENTIFIER"));
                assertEquals(SOCKET_IN_TREE, text(e, "VPORTD_DEVICE"));
                assertEquals(Integer.toString(PORT), text(e, "VPORTD_PORT"));
                assertEquals(PORT_NAME, text(e, "VPORTD_PORT_NAME"));
                assertEquals("journal", text(e, "_TRANSPORT"), "sent over the native protocol socket");
                assertEquals(UNIT, text(e, "_SYSTEMD_UNIT"), "from vportd's own process");
                assertEquals(pid, text(e, "_PID"));
            }
            // the filters of docs/logging.md select the same entries
            String byDevice = sys.ok("journalctl", "--no-pager", "-o", "cat", "SYSLOG_IDENTIFIER=vportd",
                    "VPORTD_DEVICE=" + SOCKET_IN_TREE, "VPORTD_PORT=" + PORT);
            assertEquals(String.join("\n", expected) + "\n", byDevice, "journalctl -o cat, one message a line");
            String version = sys.ok("journalctl", "--version").lines().findFirst().orElse("?");
            System.out.println("[journald-it] verified against " + version);
            assertTrue(version.startsWith("systemd 252"), version);
        }
    }

    @Test
    @Timeout(120)
    void withJournaldStoppedStartUpFailsNamingTheSocket() throws IOException {
        Files.copy(VportdProcess.jar(), share.resolve("vportd.jar"));
        sys = rig.boot(run, share);
        // the journal's sockets first, or a stopped journald would be socket-activated again
        sys.ok("systemctl", "stop", "systemd-journald.socket", "systemd-journald-dev-log.socket",
                "systemd-journald-audit.socket", "systemd-journald.service");
        assertEquals("inactive", sys.exec(STEP, "systemctl", "is-active", "systemd-journald.service").output().strip());
        SystemdRig.Result r = sys.exec(STEP, rig.jdk() + "/bin/java", "--enable-native-access=ALL-UNNAMED",
                "-jar", SystemdRig.SHARE_IN_TREE + "/vportd.jar", "--socket-path", SOCKET_IN_TREE,
                "--max-ports", Integer.toString(MAX_PORTS),
                "--port", "nr=" + PORT + ",name=" + PORT_NAME + ",console,null,log=journal");
        System.out.println("[journald-it] with journald stopped (" + sys.exec(STEP, "ls", "-l", "/run/systemd/journal").output().strip()
                + "): status " + r.status() + "\n" + r.output());
        assertEquals(1, r.status(), r::output);
        assertTrue(r.output().contains("log=journal: the journal socket /run/systemd/journal/socket is absent"
                + " (is systemd-journald running?)"), r::output);
        assertTrue(!Files.exists(share.resolve("vportd.sock")), "no vhost-user socket left behind");
    }

    /** This port's entries, oldest first ({@code journalctl -o json}, one object a line). */
    private List<JsonNode> journal() {
        String out = sys.ok("journalctl", "--no-pager", "-o", "json", "VPORTD_PORT_NAME=" + PORT_NAME);
        List<JsonNode> entries = new ArrayList<>();
        for (String line : out.split("\n")) {
            if (line.startsWith("{")) {
                try {
                    entries.add(JSON.readTree(line));
                } catch (IOException e) {
                    throw new UncheckedIOException("journalctl printed " + line, e);
                }
            }
        }
        return entries;
    }

    /** A field's value as text; journalctl prints a value that is not valid UTF-8 as a byte array (fails here). */
    private static String text(JsonNode entry, String field) {
        JsonNode v = entry.get(field);
        assertTrue(v != null && v.isTextual(), () -> field + " as text in " + entry);
        return v.asText();
    }

    private static void deleteTree(Path dir) throws IOException {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted((a, b) -> b.getNameCount() - a.getNameCount()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
