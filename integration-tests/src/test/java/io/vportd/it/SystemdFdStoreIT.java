package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.vportd.sys.SdNotify;
import io.vportd.testsupport.Await;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * systemd's file descriptor store, for real: systemd 252 as PID 1 (the rig in
 * {@code integration-tests/rig/systemd/}) runs {@link FdStoreProbe} as a {@code Type=notify}
 * unit with {@code FileDescriptorStoreMax=} and {@code Restart=always}. The probe stores a memfd,
 * its listening socket and each accepted connection with vportd's {@link SdNotify}; the test
 * kills it with SIGKILL twice and checks that systemd starts it again with every descriptor
 * back under its name ({@code LISTEN_FDNAMES}), the memfd's content carried over, and the
 * host's connections never seeing an EOF. Then {@code FDSTOREREMOVE=1} takes a name out of the
 * store, a polled connection whose client closes leaves it, and a third SIGKILL brings back
 * only what is left. Stopping the unit then empties the store (systemd 252 has no
 * {@code FileDescriptorStorePreserve=}).
 */
class SystemdFdStoreIT {

    private static final String UNIT = "vportd-fdstore-probe.service";
    private static final Duration STEP = Duration.ofSeconds(60);

    @Test
    @Timeout(400)
    void storedDescriptorsComeBackByNameAfterSigkill() throws Exception {
        SystemdRig rig = SystemdRig.require();
        Path run = Files.createTempDirectory("vportd-systemd-it");
        Path share = Files.createDirectories(run.resolve("share"));
        String classPath = stageClasses(share);
        Files.writeString(share.resolve(UNIT), unitFile(rig.jdk(), classPath));

        try (SystemdRig.Booted sys = rig.boot(run, share)) {
            sys.ok("systemctl", "link", SystemdRig.SHARE_IN_TREE + "/" + UNIT);
            sys.ok("systemctl", "start", UNIT); // returns once the probe said READY=1
            Map<String, String> first = report(share, 1);
            assertEquals("probe.state:0,probe.listen:0,probe.conn:0,probe.scratch:0", first.get("restored"), () -> first.toString());

            List<HostPort> clients = new ArrayList<>();
            clients.add(HostPort.connect(share.resolve("probe.sock"), STEP));
            assertEquals("gen=1 hello", readLine(clients.getFirst()));
            awaitStored(sys, 4); // state, scratch, listener, one connection

            for (int gen = 2; gen <= 3; gen++) {
                String pid = sys.property(UNIT, "MainPID");
                long t0 = System.nanoTime();
                sys.ok("kill", "-KILL", pid);
                // A connection queued before the process is gone may still be accepted by it in
                // its last instant (accept completes, then the fatal signal ends it) and be closed
                // with it: the client would see EOF. So connect once the old process has ended.
                Await.until("process " + pid + " gone", STEP, () -> sys.exec(STEP, "kill", "-0", pid).status() != 0);
                // the listener lives on in the store: connecting works while the probe is down
                HostPort late = HostPort.connect(share.resolve("probe.sock"), STEP);
                for (HostPort c : clients) {
                    String line = readLine(c);
                    assertEquals("gen=" + gen + " resumed conns=" + clients.size(), line,
                            () -> "a connection from before the kill\n" + sys.diagnostics(UNIT));
                }
                long ms = (System.nanoTime() - t0) / 1_000_000;
                System.out.printf("[systemd-fdstore] SIGKILL to restarted-and-resumed (generation %d): %d ms%n", gen, ms);
                assertEquals("gen=" + gen + " hello", readLine(late));
                clients.add(late);

                Map<String, String> r = report(share, gen);
                int conns = clients.size() - 1; // the connections stored before this kill
                assertEquals("probe.state:1,probe.listen:1,probe.conn:" + conns + ",probe.scratch:1", r.get("restored"), r::toString);
                assertEquals("[]", r.get("unexpected"), r::toString);
                String[] names = r.get("LISTEN_FDNAMES").split(":");
                Arrays.sort(names);
                List<String> expected = new ArrayList<>(List.of("probe.listen", "probe.scratch", "probe.state"));
                for (int i = 0; i < conns; i++) {
                    expected.add("probe.conn");
                }
                expected.sort(null);
                assertEquals(expected, List.of(names), "LISTEN_FDNAMES, in any order");
                assertEquals(first.get("state_inode"), r.get("state_inode"), "the same memfd came back");
                assertEquals(first.get("listener_inode"), r.get("listener_inode"), "the same listening socket came back");
                assertNotEquals(pid, r.get("pid"), "a new process");
                assertEquals(Integer.toString(gen - 1), sys.property(UNIT, "NRestarts"));
                awaitStored(sys, 3 + clients.size());
            }

            // FDSTOREREMOVE=1 takes a name out of the store (probe.scratch is stored with FDPOLL=0)
            HostPort asker = clients.getFirst();
            asker.write("remove probe.scratch\n", STEP);
            assertEquals("removed probe.scratch", readLine(asker));
            awaitStored(sys, 2 + clients.size());
            // a polled descriptor leaves the store when its peer goes away
            clients.removeLast().close();
            awaitStored(sys, 2 + clients.size());
            String pid = sys.property(UNIT, "MainPID");
            sys.ok("kill", "-KILL", pid);
            for (HostPort c : clients) {
                assertEquals("gen=4 resumed conns=" + clients.size(), readLine(c), () -> sys.diagnostics(UNIT));
            }
            Map<String, String> r = report(share, 4);
            assertEquals("probe.state:1,probe.listen:1,probe.conn:" + clients.size() + ",probe.scratch:0", r.get("restored"), r::toString);

            // without FileDescriptorStorePreserve= (systemd 254+) an explicit stop empties the store
            sys.ok("systemctl", "stop", UNIT);
            for (HostPort c : clients) {
                assertEquals(0, c.readUntilEof(STEP), "EOF, nothing more, once the store is gone");
                c.close();
            }
            assertEquals("0", sys.property(UNIT, "NFileDescriptorStore"));
        } finally {
            deleteTree(run);
        }
    }

    private static void awaitStored(SystemdRig.Booted sys, int count) {
        // the store messages are datagrams PID 1 reads on its own schedule
        Await.until("systemd holds " + count + " descriptors for " + UNIT, STEP,
                () -> sys.property(UNIT, "NFileDescriptorStore").equals(Integer.toString(count)));
    }

    private static String unitFile(Path jdk, String classPath) {
        return """
                [Unit]
                Description=vportd fd store probe (SystemdFdStoreIT)

                [Service]
                Type=notify
                ExecStart=%s/bin/java --enable-native-access=ALL-UNNAMED -cp %s io.vportd.it.FdStoreProbe %s
                Restart=always
                RestartSec=100ms
                FileDescriptorStoreMax=16
                TimeoutStartSec=90
                """.formatted(jdk, classPath, SystemdRig.SHARE_IN_TREE);
    }

    /** Copies vportd's native classes and the probe into the share folder; returns the class path inside. */
    private static String stageClasses(Path share) throws IOException, URISyntaxException {
        Path nativeFrom = Path.of(SdNotify.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        Path probeFrom = Path.of(FdStoreProbe.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        Path cp = Files.createDirectories(share.resolve("cp"));
        String nativeIn;
        if (Files.isDirectory(nativeFrom)) {
            copyTree(nativeFrom, cp.resolve("native"));
            nativeIn = SystemdRig.SHARE_IN_TREE + "/cp/native";
        } else {
            Files.copy(nativeFrom, cp.resolve("native.jar"));
            nativeIn = SystemdRig.SHARE_IN_TREE + "/cp/native.jar";
        }
        Path probeDir = Files.createDirectories(cp.resolve("probe/io/vportd/it"));
        try (Stream<Path> s = Files.list(probeFrom.resolve("io/vportd/it"))) {
            for (Path p : s.filter(p -> p.getFileName().toString().startsWith("FdStoreProbe")).toList()) {
                Files.copy(p, probeDir.resolve(p.getFileName()));
            }
        }
        return nativeIn + ":" + SystemdRig.SHARE_IN_TREE + "/cp/probe";
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path t = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(t);
                } else {
                    Files.copy(p, t, StandardCopyOption.COPY_ATTRIBUTES);
                }
            }
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted((a, b) -> b.getNameCount() - a.getNameCount()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** The probe's report of generation {@code gen}: KEY=VALUE lines. */
    private static Map<String, String> report(Path share, int gen) {
        Path f = share.resolve("probe-" + gen + ".txt");
        try {
            Map<String, String> m = new HashMap<>();
            for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                int eq = line.indexOf('=');
                m.put(line.substring(0, eq), line.substring(eq + 1));
            }
            return m;
        } catch (IOException e) {
            throw new UncheckedIOException("the probe's report " + f, e);
        }
    }

    private static String readLine(HostPort port) {
        StringBuilder b = new StringBuilder();
        while (true) {
            byte c = port.readExactly(1, STEP)[0];
            if (c == '\n') {
                return b.toString();
            }
            b.append((char) c);
        }
    }
}
