package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vportd.console.cli.VportdCommand;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * Issue 16: the packages as a user gets them. Builds the .tar.gz and .deb with packaging/build
 * (jlinked runtime, CDS archive, AOT cache), then integration-tests/rig/package-check installs
 * them into a clean Debian trixie tree without any JDK and runs them there: --version, --help,
 * man page, completion, AOT cache and CDS in use, and the installed vportd, as the package's
 * user, serving a real guest (QEMU from the same tree) whose qemu-guest-agent this test talks to
 * through the vportd port org.qemu.guest_agent.0: guest-sync, then guest-ping.
 */
class PackageInstallIT {

    private static final Duration CHECK = Duration.ofMinutes(6);

    @Test
    void theDebInstallsIntoATreeWithoutJavaAndServesAGuestAgent(@TempDir Path tmp) throws Exception {
        Rig rig = Rig.require();
        Path share = Files.createDirectories(tmp.resolve("share"));
        Packages pkg = Packages.build(rig);
        Path tarball = pkg.tarball();
        Path deb = pkg.deb();
        String version = pkg.version();

        ExecutorService client = Executors.newVirtualThreadPerTaskExecutor();
        try (HostProcess check = HostProcess.start("package-check",
                List.of(rig.repoRoot().resolve("integration-tests/rig/package-check").toString(),
                        "--deb", deb.toString(), "--tarball", tarball.toString(), "--share", share.toString(), "--guest"),
                rig.repoRoot(), Map.of())) {
            check.awaitLine(Pattern.compile("^PKG (vportd serving|FAIL)"), CHECK);
            assertTrue(check.output().contains("PKG vportd serving as user vportd"), check.output());
            Future<String> agent = client.submit(() -> pingGuestAgent(share));
            String pong;
            try {
                pong = agent.get(CHECK.toSeconds(), TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                agent.cancel(true);
                throw new AssertionError("qemu-guest-agent did not answer\n" + check.output(), e);
            }
            assertEquals("{\"return\": {}}", pong, "guest-ping's answer");
            tellGuestDone(share);
            int rc = check.awaitExit(CHECK);
            String out = check.output();
            assertEquals(0, rc, "package-check failed:\n" + out);
            assertInstalledPackage(out, version);
        } finally {
            client.shutdownNow();
        }
    }

    private static void assertInstalledPackage(String out, String version) {
        for (String line : List.of("PKG no-java ok", "PKG dpkg-i ok vportd " + Packages.debVersion(version),
                "PKG files ok", "PKG units verify ok: systemd", "PKG tarball ok: vportd " + version, "PKG tarball aot ok", "PKG guest exit 0",
                "PKG done")) {
            assertTrue(out.lines().anyMatch(l -> l.startsWith(line)), "no '" + line + "' in\n" + out);
        }
        assertTrue(out.contains("PKG aot ok: ") && out.contains("Using AOT-linked classes: true"), out);
        assertTrue(out.contains("PKG cds ok: ") && out.contains("classes_coh.jsa"), out);
        assertTrue(out.contains("PKG version: vportd " + version + "\n"), out);
        assertTrue(out.contains("PKG version: runtime: jlinked image (java.base, java.logging, jdk.httpserver, "
                + "jdk.unsupported) at /opt/vportd/runtime"), out);
        // the installed --help is this build's, line for line
        String help = prefixed(out, "PKG help: ");
        assertEquals(VportdCommand.usage().strip(), help.strip());
        // the installed man page names every option of the model
        String man = prefixed(out, "PKG man: ").replace("\\-", "-");
        assertTrue(man.contains(".TH VPORTD 1"), man);
        for (CommandLine.Model.OptionSpec o : VportdCommand.commandLine().getCommandSpec().options()) {
            assertTrue(man.contains(".B " + String.join(", ", o.names())), "man page lacks " + o.longestName());
        }
        assertTrue(out.contains("PKG completion complete -o default -F _complete_vportd vportd"), out);
        assertTrue(out.contains("guest opened the port") && out.contains("port 1 (org.qemu.guest_agent.0): guest opened"),
                out);
    }

    private static String prefixed(String out, String prefix) {
        return out.lines().filter(l -> l.startsWith(prefix)).map(l -> l.substring(prefix.length()))
                .collect(Collectors.joining("\n"));
    }

    /** guest-sync (skips anything qemu-ga had queued), then guest-ping; returns ping's answer line. */
    private static String pingGuestAgent(Path share) throws IOException, InterruptedException {
        Path sock = share.resolve("qga.sock");
        while (!Files.exists(sock)) {
            Thread.sleep(100);
        }
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(sock));
            write(ch, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":16016}}\n");
            StringBuilder pending = new StringBuilder();
            String line;
            do {
                line = readLine(ch, pending);
            } while (!line.equals("{\"return\": 16016}"));
            write(ch, "{\"execute\":\"guest-ping\"}\n");
            return readLine(ch, pending);
        }
    }

    private static void tellGuestDone(Path share) throws IOException {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(share.resolve("done.sock")));
            write(ch, "done");
            // stay connected until the guest has read it and ends: the scenario's end closes the port
            ByteBuffer b = ByteBuffer.allocate(64);
            while (ch.read(b.clear()) >= 0) {
                // nothing is expected from the guest on this port
            }
        } catch (java.net.SocketException e) {
            // vportd stopped after the guest ended: the connection is gone, as expected
        }
    }

    private static void write(SocketChannel ch, String s) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private static String readLine(SocketChannel ch, StringBuilder pending) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4096);
        while (pending.indexOf("\n") < 0) {
            if (ch.read(b.clear()) < 0) {
                fail("qemu-ga's port closed; got so far: " + pending);
            }
            pending.append(StandardCharsets.UTF_8.decode(b.flip()));
        }
        int nl = pending.indexOf("\n");
        String line = pending.substring(0, nl).strip();
        pending.delete(0, nl + 1);
        return line;
    }
}
