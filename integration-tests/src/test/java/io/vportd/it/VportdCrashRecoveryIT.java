package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.vportd.console.ctl.ApiClient;
import io.vportd.testsupport.Await;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Crash recovery through systemd's file descriptor store (issue 12, part 2), for real: systemd 252
 * as PID 1 (the rig in {@code integration-tests/rig/systemd/}) runs vportd as a {@code Type=notify}
 * service with {@code --fd-store}, {@code FileDescriptorStoreMax=} and {@code Restart=on-failure};
 * QEMU runs beside it on the host, connected to the vportd socket in the shared folder. While the
 * guest streams both ways, writes console lines and answers requests, and after a port was added
 * at run time, vportd is killed with SIGKILL twice. Each time systemd starts it again, and it must
 * serve the same guest on: QEMU never sees the connection end, host clients never see end of
 * file, the request port answers, both streams move again, the hot-added port works, a file
 * endpoint is appended to again, and the guest closing and reopening ports after the crashes
 * (the case that froze guests before) works. A {@code systemctl restart} then recovers the same way.
 * An exact transfer afterwards arrives whole. QEMU logs
 * no vhost error, the guest kernel no stall. Bytes in flight at the instant of each crash are not
 * checked: a crash may lose or repeat them (docs/operations.md).
 */
class VportdCrashRecoveryIT {

    static final Duration STEP = Duration.ofSeconds(180);
    static final String UNIT = "vportd-crash.service";
    static final int MAX_PORTS = 8;
    static final int CRASHES = 2;
    static final int EXACT = 1 << 20;
    static final String IN = SystemdRig.SHARE_IN_TREE;

    @Test
    @Timeout(900)
    void sigkilledVportdIsRestartedBySystemdAndServesTheSameGuestOn() throws Exception {
        SystemdRig rig = SystemdRig.require();
        Rig.require();
        Path run = Files.createTempDirectory("vportd-crash-it");
        Path share = Files.createDirectories(run.resolve("share"));
        Files.copy(VportdProcess.jar(), share.resolve("vportd.jar"));
        Files.writeString(share.resolve(UNIT), unitFile(rig.jdk()));
        List<HostPort> hosts = new ArrayList<>();
        ExecutorService pool = Executors.newCachedThreadPool();
        AtomicBoolean stop = new AtomicBoolean();
        Guest guest = null;
        try (SystemdRig.Booted sys = rig.boot(run, share)) {
            sys.ok("systemctl", "link", IN + "/" + UNIT);
            sys.ok("systemctl", "start", UNIT); // returns once vportd said READY=1
            guest = Guest.builder()
                    .name("vportd-crash")
                    .scenario(GuestScripts.script("""
                            need_ports stream.out stream.in agent log.file exact
                            echo "file before" > "$(port log.file)" || fail "write log.file"
                            ( exec 3<>"$(port agent)"; while read -r l <&3; do echo "re:$l" >&3; done ) &
                            ( i=0; while [ ! -e /tmp/stop ]; do echo "tick $i" > /dev/hvc0; i=$((i + 1)); sleep 0.05; done
                              echo "tick end $i" > /dev/hvc0 ) &
                            tk=$!
                            cat /dev/zero > "$(port stream.out)" &
                            sw=$!
                            cat "$(port stream.in)" > /dev/null &
                            sr=$!
                            mark streaming
                            need_ports hot
                            mark hot-seen
                            t=$(recv_token "$(port hot)" 8)
                            [ "$t" = hot-ping ] || fail "hot port got '$t'"
                            printf hot-pong > "$(port hot)" || fail "write hot"
                            echo "file after" > "$(port log.file)" || fail "write log.file again"
                            kill $sw $sr
                            wait $sw $sr 2>/dev/null
                            mark streams-closed
                            head -c %1$d /dev/urandom > /tmp/x || fail "no random data"
                            mark x-sha "$(sha256sum /tmp/x | cut -d' ' -f1)"
                            # one open for both ways: a port the guest closes throws away what the
                            # host sent meanwhile, and the host answers as soon as it has read it all
                            exec 8<>"$(port exact)" || fail "open exact"
                            cat /tmp/x >&8 || fail "write exact"
                            # the console's last line is written before the guest may power off
                            touch /tmp/stop
                            wait $tk
                            t=$(head -c 4 <&8)
                            mark got "$t"
                            [ "$t" = done ] || fail "no acknowledgement"
                            """.formatted(EXACT)))
                    .qemuArgs(VportdDevice.qemuArgs(share.resolve("vportd.sock"), MAX_PORTS))
                    .socketDir(share)
                    .memoryMiB(512)
                    .timeout(Duration.ofSeconds(800))
                    .start();
            Guest g = guest;
            HostPort console = connect(hosts, share.resolve("con.sock"));
            HostPort out = connect(hosts, share.resolve("out.sock"));
            HostPort in = connect(hosts, share.resolve("in.sock"));
            HostPort agent = connect(hosts, share.resolve("agent.sock"));
            HostPort exact = connect(hosts, share.resolve("exact.sock"));
            List<String> ticks = new CopyOnWriteArrayList<>();
            List<String> eofs = new CopyOnWriteArrayList<>();
            AtomicLong fromGuest = new AtomicLong();
            AtomicLong toGuest = new AtomicLong();
            CompletableFuture<Void> consoleReader = CompletableFuture.runAsync(() -> readLines(console, ticks, eofs), pool);
            pool.submit(() -> drain(out, fromGuest, stop, eofs));
            pool.submit(() -> feed(in, toGuest, stop, eofs));
            guest.awaitMark("streaming", STEP);
            try (ApiClient ctl = ApiClient.connect(share.resolve("api.sock"))) {
                JsonNode added = ctl.call(ctl.request("add-port").put("spec", "nr=6,name=hot,socket=" + IN + "/hot.sock"));
                assertTrue(added.path("ok").asBoolean(), added::toString);
            }
            HostPort hot = connect(hosts, share.resolve("hot.sock"));
            guest.awaitMark("hot-seen", STEP);
            assertEquals("re:ping-0", VportdHandoverIT.ask(agent, "ping-0"));
            Await.until("streams moving", STEP, () -> fromGuest.get() > 1 << 20 && toGuest.get() > 1 << 20);
            assertNotEquals("0", sys.property(UNIT, "NFileDescriptorStore"), () -> sys.diagnostics(UNIT));

            for (int crash = 1; crash <= CRASHES; crash++) {
                String pid = sys.property(UNIT, "MainPID");
                long t0 = System.nanoTime();
                sys.ok("kill", "-KILL", pid);
                int n = crash;
                Await.until("vportd restarted after SIGKILL " + n, STEP, () -> {
                    String now = sys.property(UNIT, "MainPID");
                    return !now.equals(pid) && !now.equals("0") && sys.property(UNIT, "ActiveState").equals("active");
                });
                assertEquals(Integer.toString(crash), sys.property(UNIT, "NRestarts"));
                assertEquals("re:ping-" + crash, VportdHandoverIT.ask(agent, "ping-" + crash),
                        () -> "the request port answers after crash " + n + "\n" + sys.diagnostics(UNIT));
                System.out.printf("[crash-recovery] crash %d: SIGKILL to the guest's agent answering again: %d ms%n",
                        crash, (System.nanoTime() - t0) / 1_000_000);
                long outAt = fromGuest.get();
                long inAt = toGuest.get();
                Await.until("both streams move again after crash " + n, STEP,
                        () -> fromGuest.get() > outAt + (256 << 10) && toGuest.get() > inAt + (256 << 10));
                assertTrue(eofs.isEmpty(), () -> "host clients saw the end of their connection: " + eofs);
                consoleMoves(ticks, "after crash " + n, sys);
            }
            // A requested restart (an upgrade of the package, say) goes the same way: SIGTERM leaves
            // everything to the store, the new process recovers from it.
            long t0 = System.nanoTime();
            sys.ok("systemctl", "restart", UNIT);
            assertEquals("re:after-restart", VportdHandoverIT.ask(agent, "after-restart"), () -> sys.diagnostics(UNIT));
            System.out.printf("[crash-recovery] systemctl restart to the guest's agent answering again: %d ms%n",
                    (System.nanoTime() - t0) / 1_000_000);
            consoleMoves(ticks, "after the restart", sys);
            String journal = sys.ok("journalctl", "--no-pager", "-u", UNIT);
            journal.lines().filter(l -> l.contains("recovered from the descriptor store") || l.contains("recovery: checkpoint")
                    || l.contains("Main process exited")
                    || l.contains("Starting vportd")).forEach(l -> System.out.println("[crash-recovery] journal: " + l));
            assertTrue(journal.contains("recovered from the descriptor store (recovery " + CRASHES + ")"), journal);
            assertTrue(journal.contains("recovered from the descriptor store (recovery " + (CRASHES + 1) + ")"), journal);

            hot.write("hot-ping", STEP);
            assertEquals("hot-pong", hot.readString(8, STEP), "the port added at run time survives the crashes");
            guest.awaitMark("streams-closed", STEP); // the guest closed two ports: control messages after recovery
            stop.set(true);
            String sha = exact.readSha256(EXACT, STEP);
            assertEquals(g.awaitMark("x-sha", STEP), sha, "an exact transfer after the crashes arrives whole");
            exact.write("done", STEP);
            GuestResult r = guest.awaitExit().assertSucceeded();
            try {
                consoleReader.get(STEP.toSeconds(), TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                throw new AssertionError("the console's last line never came; the last ones were "
                        + ticks.subList(Math.max(0, ticks.size() - 3), ticks.size()) + "\n" + guest.output(), e);
            }
            assertTrue(ticks.getLast().startsWith("tick end "), () -> "the console works to the end: " + ticks.getLast());
            String file = Files.readString(share.resolve("guest.log"), StandardCharsets.UTF_8);
            assertTrue(file.contains("file before\n") && file.contains("file after\n"),
                    () -> "the file endpoint is appended to again after the crashes: " + file);
            assertTrue(eofs.isEmpty(), () -> "host clients saw the end of their connection: " + eofs);
            String output = guest.output();
            for (String bad : List.of("Unexpected end-of-file", "Failed to set msg fds", "ring restore failed", "vhost VQ",
                    "soft lockup", "rcu_sched detected stall", "rcu: INFO", "self-detected stall")) {
                assertFalse(output.contains(bad), () -> "guest/QEMU output contains '" + bad + "':\n" + output);
            }
            assertFalse(r.lines().isEmpty());
            journal = sys.ok("journalctl", "--no-pager", "-u", UNIT);
            assertFalse(journal.contains("Exception"), journal);
            assertFalse(journal.contains("cannot update the descriptor store"), journal);
        } finally {
            stop.set(true);
            pool.shutdownNow();
            hosts.forEach(HostPort::close);
            if (guest != null) {
                guest.close();
            }
            try (var files = Files.walk(run)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    private static String unitFile(Path jdk) {
        return """
                [Unit]
                Description=vportd with crash recovery (VportdCrashRecoveryIT)

                [Service]
                Type=notify
                ExecStart=%1$s/bin/java --enable-native-access=ALL-UNNAMED -jar %2$s/vportd.jar --fd-store \
                 --socket-path %2$s/vportd.sock --max-ports %3$d --api-socket %2$s/api.sock \
                 --port nr=0,console,socket=%2$s/con.sock --port nr=1,name=stream.out,socket=%2$s/out.sock \
                 --port nr=2,name=stream.in,socket=%2$s/in.sock --port nr=3,name=agent,socket=%2$s/agent.sock \
                 --port nr=4,name=log.file,file=%2$s/guest.log --port nr=5,name=exact,socket=%2$s/exact.sock
                Restart=on-failure
                RestartSec=100ms
                FileDescriptorStoreMax=1024
                TimeoutStartSec=90
                """.formatted(jdk, IN, MAX_PORTS);
    }

    /** The guest's console lines keep arriving: a few more after {@code when}. */
    private static void consoleMoves(List<String> ticks, String when, SystemdRig.Booted sys) {
        int seen = ticks.size();
        try {
            Await.until("console lines arrive " + when, STEP, () -> ticks.size() > seen + 3);
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "; the last line was " + (ticks.isEmpty() ? "none" : ticks.getLast())
                    + "\n" + sys.diagnostics(UNIT), e);
        }
    }

    private static HostPort connect(List<HostPort> hosts, Path socket) {
        HostPort h = HostPort.connect(socket, STEP);
        hosts.add(h);
        return h;
    }

    /** Reads the guest's stream, counting, until told to stop; an end of file is recorded. */
    private static void drain(HostPort port, AtomicLong count, AtomicBoolean stop, List<String> eofs) {
        while (!stop.get()) {
            try {
                count.addAndGet(port.readExactly(4096, Duration.ofSeconds(2)).length);
            } catch (AssertionError e) {
                if (String.valueOf(e.getMessage()).contains("EOF")) {
                    eofs.add(port.label() + ": " + e.getMessage());
                    return;
                }
            }
        }
    }

    /** Writes to the guest until told to stop; an end of the connection is recorded. */
    private static void feed(HostPort port, AtomicLong count, AtomicBoolean stop, List<String> eofs) {
        byte[] chunk = new byte[16384];
        while (!stop.get()) {
            try {
                port.write(chunk, Duration.ofSeconds(2));
                count.addAndGet(chunk.length);
            } catch (AssertionError e) {
                if (!String.valueOf(e.getMessage()).contains("timed out")) {
                    eofs.add(port.label() + ": " + e.getMessage());
                    return;
                }
            }
        }
    }

    /** Reads console lines until "tick end N" arrives (lines around a crash may be lost or repeated). */
    private static void readLines(HostPort console, List<String> lines, List<String> eofs) {
        try {
            VportdHandoverIT.readTicks(console, lines, STEP);
        } catch (AssertionError e) {
            eofs.add("console: " + e.getMessage());
            throw e;
        }
    }
}
