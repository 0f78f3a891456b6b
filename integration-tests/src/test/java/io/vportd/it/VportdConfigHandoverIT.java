package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.vportd.console.ctl.ApiClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Live hand-over of a whole {@code --config} daemon under two running guests (issue 13): each
 * guest streams both ways on its own device (sha256 at both ends) and answers requests on an agent
 * port while the daemon is replaced three times with {@code --take-over --config}, every device
 * at once. The host sides hold a quarter of each stream back until the last hand-over is done, so
 * every hand-over happens with both streams of both guests in flight. A port added to one device
 * and a device added at run time (through the API) come along. On the way: a take-over with
 * nobody serving fails at once and creates nothing, and a new process that dies once it has the
 * state leaves the running daemon serving both guests. Afterwards both streams of both guests are
 * whole, list-devices shows every device, QEMU logged no vhost error and no guest kernel a stall.
 */
class VportdConfigHandoverIT {

    static final Duration STEP = Duration.ofSeconds(240);
    static final int MAX_PORTS = 5;
    static final int STREAM = 8 * 1024 * 1024;
    static final int CHUNK = 64 * 1024;
    static final int HANDOVERS = 3;
    static final List<String> GUESTS = List.of("vm-a", "vm-b");

    private Path dir;
    private final List<VportdProcess> daemons = new ArrayList<>();
    private final List<Guest> guests = new ArrayList<>();
    private final List<HostPort> hosts = new ArrayList<>();
    private ExecutorService pool;
    /** Released once the last hand-over is done: the host sides then move the last quarter of each stream. */
    private final CountDownLatch handedOver = new CountDownLatch(1);

    @BeforeEach
    void prepare() throws IOException {
        Rig.require();
        dir = Files.createTempDirectory("vportd-cho-");
        pool = Executors.newCachedThreadPool();
    }

    @AfterEach
    void tearDown() throws Exception {
        handedOver.countDown();
        pool.shutdownNow();
        hosts.forEach(HostPort::close);
        guests.forEach(Guest::close);
        for (VportdProcess d : daemons) {
            d.close();
        }
        for (VportdProcess d : daemons) {
            assertFalse(d.log().contains("Exception"), () -> "vportd logged an exception:\n" + d.log());
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

    private static final String SCRIPT = """
            need_ports agent
            ( exec 3<>"$(port agent)"; while read -r l <&3; do echo "re:$l" >&3; done ) &
            """ + GuestScripts.streamsBothWays(STREAM) + """
            wait $sw || fail "stream writer failed"
            wait $sr
            mark in-bytes "$(wc -c < /tmp/in)"
            mark in-sha "$(sha256sum /tmp/in | cut -d' ' -f1)"
            mark await-done
            [ "$(recv_token "$(port stream.out)" 4)" = done ] || fail "no acknowledgement"
            """;

    @Test
    @Timeout(1800)
    void threeHandOversOfTwoDevicesUnderStreamsChangeNothingEitherGuestCanSee() throws Exception {
        Path api = dir.resolve("api.sock");
        Path handoverSocket = dir.resolve("api.sock.handover");
        StringBuilder toml = new StringBuilder("api-socket = \"" + api + "\"\nevent-loops = 2\n");
        for (String d : GUESTS) {
            toml.append("\n[[device]]\nid = \"").append(d).append("\"\nsocket = \"").append(sock(d, "vhost"))
                    .append("\"\nmax-ports = ").append(MAX_PORTS).append("\nports = [\n")
                    .append("  \"nr=0,console,null\",\n")
                    .append("  \"nr=1,name=stream.out,socket=").append(sock(d, "out")).append("\",\n")
                    .append("  \"nr=2,name=stream.in,socket=").append(sock(d, "in")).append("\",\n")
                    .append("  \"nr=3,name=agent,socket=").append(sock(d, "agent")).append("\",\n]\n");
        }
        Path config = dir.resolve("vportd.toml");
        Files.writeString(config, toml);
        VportdProcess first = VportdProcess.startConfig("cho-0", config, api, Duration.ofSeconds(30));
        daemons.add(first);

        for (String d : GUESTS) {
            guests.add(Guest.builder()
                    .name(d)
                    .scenario(GuestScripts.script(SCRIPT))
                    .qemuArgs(VportdDevice.qemuArgs(sock(d, "vhost"), MAX_PORTS))
                    .socketDir(dir)
                    .memoryMiB(384)
                    .timeout(Duration.ofSeconds(1500))
                    .start());
        }
        Map<String, CompletableFuture<String>> fromGuest = new HashMap<>();
        Map<String, CompletableFuture<String>> toGuest = new HashMap<>();
        Map<String, HostPort> agents = new HashMap<>();
        Map<String, HostPort> outs = new HashMap<>();
        for (String d : GUESTS) {
            HostPort out = host(sock(d, "out"));
            HostPort in = host(sock(d, "in"));
            outs.put(d, out);
            agents.put(d, host(sock(d, "agent")));
            fromGuest.put(d, CompletableFuture.supplyAsync(() -> readHeldBack(out), pool));
            long seed = d.hashCode();
            toGuest.put(d, CompletableFuture.supplyAsync(() -> writeHeldBack(in, seed), pool));
        }
        for (Guest g : guests) {
            g.awaitMark("streaming", STEP);
        }
        for (String d : GUESTS) {
            assertEquals("re:hello", VportdHandoverIT.ask(agents.get(d), "hello"), d + " answers before the hand-overs");
        }

        // Run-time changes that must come along: a port added to vm-a, a device added (no guest behind it).
        try (ApiClient ctl = ApiClient.connect(api)) {
            JsonNode port = ctl.call(ctl.request("add-port").put("device", "vm-a").put("spec", "nr=4,name=late,null"));
            assertTrue(port.path("ok").asBoolean(), port::toString);
            var request = ctl.request("add-device");
            var late = request.putObject("config").put("id", "vm-late")
                    .put("socket", sock("vm-late", "vhost").toString()).put("max-ports", 2);
            late.putArray("ports").add("nr=0,console,null").add("nr=1,name=x,socket=" + sock("vm-late", "x"));
            JsonNode device = ctl.call(request);
            assertTrue(device.path("ok").asBoolean(), device::toString);
        }
        HostPort lateClient = host(sock("vm-late", "x"));

        // Nobody serves this configuration: the take-over fails at once and creates nothing.
        Path elsewhere = Files.createDirectory(dir.resolve("elsewhere"));
        Path stray = elsewhere.resolve("stray.toml");
        Files.writeString(stray, "api-socket = \"" + elsewhere.resolve("api.sock") + "\"\n");
        List<Path> before = list(elsewhere);
        VportdProcess nobody = VportdProcess.launchArgs("cho-stray", List.of("--take-over", "--config", stray.toString()));
        daemons.add(nobody);
        assertNotEquals(0, nobody.awaitExit(Duration.ofSeconds(60)), "a take-over with nobody serving fails");
        assertTrue(nobody.log().contains("no vportd serves this configuration"), nobody::log);
        assertEquals(before, list(elsewhere), "a failed take-over creates nothing");

        VportdProcess current = first;
        List<Double> pauses = new ArrayList<>();
        for (int round = 1; round <= HANDOVERS; round++) {
            if (round == 2) {
                // A new process that dies once it has the state: the running daemon resumes every device.
                VportdHandoverIT.abandonAfterState(handoverSocket, 2);
                current.awaitLog("hand-over did not happen", STEP);
                assertTrue(current.isAlive(), "the running daemon serves on after an abandoned hand-over");
                for (String d : GUESTS) {
                    assertEquals("re:abandoned", VportdHandoverIT.ask(agents.get(d), "abandoned"), d);
                }
            }
            VportdProcess next = VportdProcess.launchArgs("cho-" + round,
                    List.of("--take-over", "--config", config.toString(), "--log-level", "info"));
            daemons.add(next);
            String done = next.awaitLog("hand-over complete", STEP);
            Matcher m = VportdHandoverIT.PAUSE.matcher(done);
            assertTrue(m.find(), done);
            pauses.add(Double.parseDouble(m.group(1)));
            assertEquals(0, current.awaitExit(Duration.ofSeconds(60)), "the old daemon exits 0 once the new one serves");
            current = next;
            for (String d : GUESTS) {
                assertEquals("re:ping-" + round, VportdHandoverIT.ask(agents.get(d), "ping-" + round),
                        d + "'s agent port answers after hand-over " + round);
            }
        }
        System.out.println("[config-handover] hand-over pauses (ms), both devices at once: " + pauses);
        handedOver.countDown();

        for (int i = 0; i < GUESTS.size(); i++) {
            String d = GUESTS.get(i);
            Guest g = guests.get(i);
            assertEquals(g.awaitMark("out-sha", STEP), get(fromGuest.get(d)),
                    d + ": guest->host stream, every byte once and in order across the hand-overs");
            g.awaitMark("await-done", STEP);
            outs.get(d).write("done", STEP);
            GuestResult r = g.awaitExit().assertSucceeded();
            assertEquals(Integer.toString(STREAM), r.mark("in-bytes").strip(), d);
            assertEquals(get(toGuest.get(d)), r.mark("in-sha"),
                    d + ": host->guest stream, every byte once and in order across the hand-overs");
            for (String bad : List.of("Unexpected end-of-file", "Failed to set msg fds", "ring restore failed",
                    "vhost VQ", "soft lockup", "rcu_sched detected stall", "rcu: INFO", "self-detected stall")) {
                assertFalse(r.output().contains(bad), () -> d + ": guest/QEMU output contains '" + bad + "':\n"
                        + r.output());
            }
        }
        assertTrue(lateClient.nothingToRead(), "the client of the device added at run time saw no end of file");
        try (ApiClient ctl = ApiClient.connect(api)) {
            List<String> ids = new ArrayList<>();
            for (JsonNode d : ctl.call(ctl.request("list-devices")).path("devices")) {
                ids.add(d.path("device").asText());
            }
            assertEquals(List.of("vm-a", "vm-b", "vm-late"), ids, "every device, the one added at run time too");
            JsonNode ports = ctl.call(ctl.request("list-ports").put("device", "vm-a"));
            assertEquals(5, ports.path("ports").size(), () -> "vm-a's port added at run time came along: " + ports);
            assertTrue(ports.path("ports").get(1).path("to-host").path("bytes").asLong() >= STREAM,
                    () -> "vm-a's counters went on across the hand-overs: " + ports);
        }
        assertTrue(current.isAlive());
    }

    /** Reads the guest's stream, holding the last quarter back until the hand-overs are done; its SHA-256. */
    private String readHeldBack(HostPort out) {
        MessageDigest md = Digests.sha256();
        for (int got = 0; got < STREAM; got += CHUNK) {
            if (got == STREAM / 4 * 3) {
                awaitHandOvers();
            }
            md.update(out.readExactly(CHUNK, Duration.ofSeconds(1200)));
        }
        return Digests.hex(md.digest());
    }

    /** Writes a pseudo-random stream to the guest, holding the last quarter back until the hand-overs are done. */
    private String writeHeldBack(HostPort in, long seed) {
        MessageDigest md = Digests.sha256();
        SplittableRandom rnd = new SplittableRandom(seed);
        byte[] chunk = new byte[CHUNK];
        for (int sent = 0; sent < STREAM; sent += CHUNK) {
            if (sent == STREAM / 4 * 3) {
                awaitHandOvers();
            }
            rnd.nextBytes(chunk);
            md.update(chunk);
            in.write(chunk, Duration.ofSeconds(1200));
        }
        return Digests.hex(md.digest());
    }

    private void awaitHandOvers() {
        try {
            if (!handedOver.await(1200, TimeUnit.SECONDS)) {
                throw new AssertionError("the hand-overs did not end");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    private static List<Path> list(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }

    private static <T> T get(CompletableFuture<T> f) throws InterruptedException {
        try {
            return f.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof AssertionError ae) {
                throw ae;
            }
            throw new AssertionError(e.getCause());
        }
    }
}
