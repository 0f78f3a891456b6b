package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.vportd.console.ctl.ApiClient;
import io.vportd.testsupport.Await;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * One vportd serving three VMs at once ({@code vportd --config FILE}, issue 13): each guest has its
 * own device, vhost-user socket and ports. Guests A and B stream both ways (sha256 at both ends)
 * while guest C streams towards the host; C's QEMU is killed with SIGKILL mid-stream. A and B
 * must finish intact, the daemon must serve on, and C's device must take C's next QEMU, whose
 * guest then answers on its agent port and receives a stream intact. Metrics and the API name
 * the devices.
 */
class VportdMultiDeviceIT {

    static final Duration STEP = Duration.ofSeconds(240);
    static final int MAX_PORTS = 4;
    static final int STREAM = 8 * 1024 * 1024;
    static final List<String> DEVICES = List.of("vm-a", "vm-b", "vm-c");

    private Path dir;
    private VportdProcess daemon;
    private final List<Guest> guests = new ArrayList<>();
    private final List<HostPort> hosts = new ArrayList<>();
    private ExecutorService pool;

    @BeforeEach
    void prepare() throws IOException {
        Rig.require();
        dir = Files.createTempDirectory("vportd-md-");
        pool = Executors.newCachedThreadPool();
    }

    @AfterEach
    void tearDown() throws Exception {
        pool.shutdownNow();
        hosts.forEach(HostPort::close);
        guests.forEach(Guest::close);
        if (daemon != null) {
            daemon.close();
            assertFalse(daemon.log().contains("Exception"), () -> "vportd logged an exception:\n" + daemon.log());
        }
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private Path sock(String device, String name) {
        return dir.resolve(device + "-" + name + ".sock");
    }

    private HostPort host(Path socket) {
        HostPort h = HostPort.connect(socket, STEP);
        hosts.add(h);
        return h;
    }

    private Guest guest(String device, String script, int memoryMiB) {
        Guest g = Guest.builder()
                .name(device)
                .scenario(GuestScripts.script(script))
                .qemuArgs(VportdDevice.qemuArgs(sock(device, "vhost"), MAX_PORTS))
                .socketDir(dir)
                .memoryMiB(memoryMiB)
                .timeout(Duration.ofSeconds(1000))
                .start();
        guests.add(g);
        return g;
    }

    /** Both ways on one guest: out-sha/in-sha marks from the guest, the host's digests in the futures. */
    private static final String STREAMS = GuestScripts.streamsBothWays(STREAM) + """
            wait $sw || fail "stream writer failed"
            wait $sr
            mark in-bytes "$(wc -c < /tmp/in)"
            mark in-sha "$(sha256sum /tmp/in | cut -d' ' -f1)"
            mark await-done
            [ "$(recv_token "$(port stream.out)" 4)" = done ] || fail "no acknowledgement"
            """;

    @Test
    @Timeout(1800)
    void threeVmsOnOneVportdOneQemuKilledTheOthersFinishAndItsDeviceTakesTheNextQemu() throws Exception {
        Path api = dir.resolve("api.sock");
        StringBuilder toml = new StringBuilder("api-socket = \"" + api + "\"\n");
        for (String d : DEVICES) {
            toml.append("\n[[device]]\nid = \"").append(d).append("\"\nsocket = \"").append(sock(d, "vhost"))
                    .append("\"\nmax-ports = ").append(MAX_PORTS).append("\nports = [\n")
                    .append("  \"nr=0,console,null\",\n")
                    .append("  \"nr=1,name=stream.out,socket=").append(sock(d, "out")).append("\",\n")
                    .append("  \"nr=2,name=stream.in,socket=").append(sock(d, "in")).append("\",\n")
                    .append("  \"nr=3,name=agent,socket=").append(sock(d, "agent")).append("\",\n]\n");
        }
        Path config = dir.resolve("vportd.toml");
        Files.writeString(config, toml);
        daemon = VportdProcess.startConfig("multi", config, api, Duration.ofSeconds(30));

        Guest a = guest("vm-a", STREAMS, 384);
        Guest b = guest("vm-b", STREAMS, 384);
        Guest c = guest("vm-c", """
                need_ports stream.out
                mark streaming
                cat /dev/urandom > "$(port stream.out)"
                fail "the stream towards the host ended"
                """, 256);

        Map<String, CompletableFuture<String>> fromGuest = new HashMap<>();
        Map<String, CompletableFuture<String>> toGuest = new HashMap<>();
        for (String d : List.of("vm-a", "vm-b")) {
            HostPort out = host(sock(d, "out"));
            HostPort in = host(sock(d, "in"));
            fromGuest.put(d, CompletableFuture.supplyAsync(() -> out.readSha256(STREAM, Duration.ofSeconds(1200)), pool));
            long seed = d.hashCode();
            toGuest.put(d, CompletableFuture.supplyAsync(() -> in.writeRandom(STREAM, seed, Duration.ofSeconds(1200)), pool));
        }
        // Guest C streams until its QEMU is killed; the host side counts what arrives.
        HostPort cOut = host(sock("vm-c", "out"));
        AtomicLong cBytes = new AtomicLong();
        CompletableFuture<Void> cReader = CompletableFuture.runAsync(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                cBytes.addAndGet(cOut.readExactly(4096, Duration.ofSeconds(1200)).length);
            }
        }, pool);
        a.awaitMark("streaming", STEP);
        b.awaitMark("streaming", STEP);
        c.awaitMark("streaming", STEP);
        Await.until("guest C's stream to flow (1 MiB)", STEP, () -> cBytes.get() >= 1 << 20);

        // Kill C's QEMU outright, mid-stream, while A and B stream.
        List<ProcessHandle> qemus = c.qemuProcesses();
        assertEquals(1, qemus.size(), "guest C runs one QEMU: " + qemus);
        qemus.get(0).destroyForcibly();
        c.awaitExit();
        long cAtKill = cBytes.get();
        System.out.println("[multi] guest C's QEMU killed after " + cAtKill + " bytes of its stream arrived");

        try (ApiClient ctl = ApiClient.connect(api)) {
            Await.until("device vm-c to see its frontend gone", STEP, () -> !frontendConnected(ctl, "vm-c"));
            assertTrue(frontendConnected(ctl, "vm-a") && frontendConnected(ctl, "vm-b"),
                    "A's and B's frontends stay connected");
        }

        for (String d : List.of("vm-a", "vm-b")) {
            Guest g = d.equals("vm-a") ? a : b;
            String outSha = g.awaitMark("out-sha", STEP);
            assertEquals(outSha, fromGuest.get(d).get(), d + ": guest->host stream intact beside the killed VM");
            // Only once the writer closed the port: what reaches a port the guest then closes, it drops.
            g.awaitMark("await-done", STEP);
            hosts.stream().filter(h -> h.label().contains(d + "-out")).findFirst().orElseThrow().write("done", STEP);
            GuestResult r = g.awaitExit().assertSucceeded();
            assertEquals(Integer.toString(STREAM), r.mark("in-bytes").strip(), d);
            assertEquals(toGuest.get(d).get(), r.mark("in-sha"), d + ": host->guest stream intact beside the killed VM");
            for (String bad : List.of("Unexpected end-of-file", "ring restore failed", "vhost VQ", "soft lockup",
                    "rcu_sched detected stall", "self-detected stall")) {
                assertFalse(r.output().contains(bad), () -> d + ": guest/QEMU output contains '" + bad + "'");
            }
        }
        assertTrue(daemon.isAlive(), "the daemon serves on after one VM's QEMU was killed");
        cReader.cancel(true);

        // C's next QEMU: the same device takes it; its guest answers and receives a stream intact.
        Guest c2 = guest("vm-c", """
                need_ports agent stream.in
                ( exec 3<>"$(port agent)"; read -r l <&3; echo "re:$l" >&3 )
                head -c %1$d < "$(port stream.in)" > /tmp/in
                mark in-sha "$(sha256sum /tmp/in | cut -d' ' -f1)"
                """.formatted(STREAM), 256);
        HostPort agent = host(sock("vm-c", "agent"));
        assertEquals("re:again", VportdHandoverIT.ask(agent, "again"), "guest C, restarted, answers through its device");
        String sent = host(sock("vm-c", "in")).writeRandom(STREAM, 99, Duration.ofSeconds(900));
        GuestResult r2 = c2.awaitExit().assertSucceeded();
        assertEquals(sent, r2.mark("in-sha"), "the restarted guest C receives a stream intact");

        try (ApiClient ctl = ApiClient.connect(api)) {
            JsonNode m = ctl.call(ctl.request("metrics"));
            String text = m.path("metrics").asText();
            for (String d : DEVICES) {
                assertTrue(text.contains("vportd_ports{device=\"" + d + "\"} 4"), () -> "metrics name " + d + ":\n" + text);
            }
            JsonNode ports = ctl.call(ctl.request("list-ports").put("device", "vm-a"));
            assertTrue(ports.path("ports").get(1).path("to-host").path("bytes").asLong() >= STREAM, ports::toString);
        }
        assertTrue(daemon.log().contains("device vm-c: vhost-user"), "the log names the device of a session:\n" + daemon.log());
    }

    private static boolean frontendConnected(ApiClient ctl, String device) {
        try {
            for (JsonNode d : ctl.call(ctl.request("list-devices")).path("devices")) {
                if (d.path("device").asText().equals(device)) {
                    return d.path("frontend-connected").asBoolean();
                }
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        throw new AssertionError("no device " + device);
    }
}
