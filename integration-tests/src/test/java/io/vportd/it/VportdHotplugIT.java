package io.vportd.it;

import io.vportd.testsupport.Await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.vportd.console.ctl.ApiClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Hot-plug through the management socket against a real guest: 64 named ports are added while
 * two other ports stream data both ways; each new port appears in the guest under its name and
 * carries data both ways; half of them are removed, including ports the guest holds open
 * (readers, and a writer whose data the host never reads); the guest sees them vanish and its
 * processes on them end; an id is added again and works; the streams lose nothing.
 */
class VportdHotplugIT {

    static final Duration STEP = Duration.ofSeconds(180);
    static final int MAX_PORTS = 80;
    static final int FIRST = 10;
    static final int COUNT = 64;
    static final int STREAM = 16 * 1024 * 1024;

    private Path dir;
    private VportdProcess daemon;
    private Guest guest;
    private final List<HostPort> hosts = new ArrayList<>();
    private final List<AutoCloseable> closers = new ArrayList<>();

    @BeforeEach
    void prepare() throws IOException {
        Rig.require();
        dir = Files.createTempDirectory("vportd-hp-");
    }

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : closers) {
            c.close();
        }
        hosts.forEach(HostPort::close);
        if (guest != null) {
            guest.close();
        }
        if (daemon != null) {
            daemon.close();
            assertTrue(!daemon.log().contains("Exception"), () -> "vportd logged an exception:\n" + daemon.log());
        }
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
    }

    private Path sock(String name) {
        return dir.resolve(name + ".sock");
    }

    private HostPort host(Path socket) {
        HostPort h = HostPort.connect(socket, STEP);
        hosts.add(h);
        return h;
    }

    @Test
    @Timeout(900)
    void hotAdd64WhileStreamingRemoveHalfReAdd() throws Exception {
        Path api = dir.resolve("api.sock");
        Path vhost = dir.resolve("vportd.sock");
        daemon = VportdProcess.start("hotplug", vhost, List.of("--max-ports", Integer.toString(MAX_PORTS),
                "--api-socket", api.toString(),
                "--port", "nr=1,name=stream.out,socket=" + sock("out"),
                "--port", "nr=2,name=stream.in,socket=" + sock("in")), Duration.ofSeconds(30));
        String removedList = IntStream.range(FIRST, FIRST + COUNT).filter(n -> n % 2 == 0)
                .mapToObj(Integer::toString).reduce((a, b) -> a + " " + b).orElseThrow();
        guest = Guest.builder()
                .name("vportd-hotplug")
                .scenario(GuestScripts.script(GuestScripts.streamsBothWays(STREAM) + """
                        hp() { ls /dev/virtio-ports | grep -c '^hp\\.'; }
                        i=0
                        while [ "$(hp)" -lt %3$d ]; do
                          i=$((i + 1)); [ $i -gt 1800 ] && fail "only $(hp) hot-added ports appeared"
                          sleep 0.1
                        done
                        mark appeared "$(hp)"
                        for d in /sys/class/virtio-ports/*; do
                          n=$(cat "$d/name" 2>/dev/null); case "$n" in hp.*) mark name "${d##*/}" "$n";; esac
                        done
                        n=%2$d; while [ $n -lt %4$d ]; do
                          printf "g%%03d" $n > "$(port hp.$n)" || fail "write hp.$n"
                          n=$((n + 1))
                        done
                        mark wrote-all
                        n=%2$d; while [ $n -lt %4$d ]; do
                          t=$(recv_token "$(port hp.$n)" 4)
                          [ "$t" = "$(printf h%%03d $n)" ] || fail "hp.$n got '$t'"
                          n=$((n + 1))
                        done
                        mark read-all
                        for n in 10 12 14 16 18 20 22 24; do
                          cat "$(port hp.$n)" > /dev/null 2>&1 &
                          echo $! >> /tmp/holders
                        done
                        head -c 3000000 /dev/zero > "$(port hp.26)" 2>/dev/null &
                        echo $! >> /tmp/holders
                        mark holding
                        i=0
                        while [ "$(ls /sys/class/virtio-ports | wc -l)" -gt %5$d ]; do
                          i=$((i + 1)); [ $i -gt 1800 ] && fail "$(ls /sys/class/virtio-ports | wc -l) ports left"
                          sleep 0.1
                        done
                        mark left "$(for d in /sys/class/virtio-ports/*; do cat "$d/name"; done | tr '\\n' ' ')"
                        for n in %6$s; do [ -e "/dev/vport0p$n" ] && fail "/dev/vport0p$n still exists"; done
                        i=0
                        for p in $(cat /tmp/holders); do
                          while kill -0 $p 2>/dev/null; do
                            i=$((i + 1)); [ $i -gt 600 ] && fail "process $p on a removed port did not end"
                            sleep 0.1
                          done
                        done
                        mark holders-done
                        printf "x%%03d" 11 > "$(port hp.11)" || fail "write hp.11 after the removals"
                        need_ports hp.again
                        mark again "$(recv_token "$(port hp.again)" 5)"
                        printf back > "$(port hp.again)" || fail "write hp.again"
                        wait $sw || fail "stream writer failed"
                        wait $sr
                        mark in-bytes "$(wc -c < /tmp/in)"
                        mark in-sha "$(sha256sum /tmp/in | cut -d' ' -f1)"
                        [ "$(recv_token "$(port stream.out)" 4)" = done ] || fail "no acknowledgement"
                        """.formatted(STREAM, FIRST, COUNT, FIRST + COUNT, 2 + COUNT / 2, removedList)))
                .qemuArgs(VportdDevice.qemuArgs(vhost, MAX_PORTS))
                .socketDir(dir)
                .memoryMiB(768)
                .timeout(Duration.ofSeconds(800))
                .start();

        // A subscriber that records every event on its own connection.
        List<JsonNode> events = new CopyOnWriteArrayList<>();
        ApiClient eventsClient = ApiClient.connect(api);
        closers.add(eventsClient);
        assertTrue(eventsClient.call(eventsClient.request("subscribe")).path("ok").asBoolean());
        Thread.ofPlatform().daemon().name("events").start(() -> {
            try {
                while (true) {
                    events.add(eventsClient.nextEvent());
                }
            } catch (IOException closed) {
                // the test closed the connection
            }
        });
        ApiClient ctl = ApiClient.connect(api);
        closers.add(ctl);

        // The two streams run paced until the hot-plug work is done, then at full speed.
        HostPort out = host(sock("out"));
        HostPort in = host(sock("in"));
        CountDownLatch hotplugDone = new CountDownLatch(1);
        Duration bulk = Duration.ofSeconds(600);
        CompletableFuture<String> fromGuest = CompletableFuture.supplyAsync(() -> pacedRead(out, hotplugDone, bulk));
        CompletableFuture<String> toGuest = CompletableFuture.supplyAsync(() -> pacedWrite(in, hotplugDone, bulk));
        String outSha = guest.awaitMark("out-sha", STEP);
        guest.awaitMark("streaming", STEP);

        // Hot-add 64 named ports.
        Map<Integer, HostPort> hp = new TreeMap<>();
        for (int n = FIRST; n < FIRST + COUNT; n++) {
            JsonNode r = ctl.call(ctl.request("add-port").put("spec", "nr=" + n + ",name=hp." + n + ",socket=" + sock("hp" + n)));
            assertTrue(r.path("ok").asBoolean(), r::toString);
            assertEquals("hp." + n, r.path("port").path("name").asText());
            hp.put(n, host(sock("hp" + n)));
        }
        // A taken id and a taken name are refused, and the daemon goes on.
        assertEquals("id-taken", ctl.call(ctl.request("add-port").put("spec", "nr=10,name=other,null"))
                .path("error").path("code").asText());
        assertEquals("name-taken", ctl.call(ctl.request("add-port").put("spec", "nr=79,name=hp.10,null"))
                .path("error").path("code").asText());
        assertEquals("id-out-of-range", ctl.call(ctl.request("add-port").put("spec", "nr=80,null"))
                .path("error").path("code").asText());
        assertEquals(Integer.toString(COUNT), guest.awaitMark("appeared", STEP).strip());
        for (var e : hp.entrySet()) {
            assertEquals(String.format("g%03d", e.getKey()), e.getValue().readString(4, STEP), "hp." + e.getKey());
        }
        // Host data reaching a port the guest has just closed is thrown away by the guest: write
        // only once vportd has seen the close of the last port written (control messages are
        // handled in order, so every earlier close was seen too).
        guest.awaitMark("wrote-all", STEP);
        int last = FIRST + COUNT - 1;
        Await.until("vportd to see the guest close hp." + last, STEP,
                () -> !listPorts(ctl).get(last).path("guest-open").asBoolean());
        for (var e : hp.entrySet()) {
            e.getValue().write(String.format("h%03d", e.getKey()), STEP);
        }
        guest.awaitMark("read-all", STEP);
        guest.awaitMark("holding", STEP);

        // Remove the even half once the guest holds 10..24 open and has data waiting on 26.
        Await.until("the guest to hold its ports open", STEP, () -> {
            Map<Integer, JsonNode> ports = listPorts(ctl);
            for (int n = 10; n <= 24; n += 2) {
                if (!ports.get(n).path("guest-open").asBoolean()) {
                    return false;
                }
            }
            return ports.get(26).path("holding-guest-data").asBoolean();
        });
        long removedUndelivered = 0;
        for (int n = FIRST; n < FIRST + COUNT; n += 2) {
            JsonNode r = ctl.call(ctl.request("remove-port").put("nr", n));
            assertTrue(r.path("ok").asBoolean(), r::toString);
            assertEquals("hp." + n, r.path("removed").path("name").asText());
            if (n <= 26) {
                assertTrue(r.path("removed").path("guest-was-open").asBoolean(), () -> "port held open: " + r);
            }
            if (n == 26) {
                removedUndelivered = r.path("removed").path("undelivered-bytes").asLong();
            }
            hp.get(n).readUntilEof(STEP); // the host end is closed cleanly
        }
        assertTrue(removedUndelivered > 0, "guest output the host never read is reported by the removal");
        assertEquals("no-such-port", ctl.call(ctl.request("remove-port").put("nr", 10)).path("error").path("code").asText());

        List<String> left = Arrays.stream(guest.awaitMark("left", STEP).trim().split("\\s+")).sorted().toList();
        List<String> expected = new ArrayList<>(List.of("stream.in", "stream.out"));
        for (int n = FIRST + 1; n < FIRST + COUNT; n += 2) {
            expected.add("hp." + n);
        }
        assertEquals(expected.stream().sorted().toList(), left, "the guest has exactly the ports not removed");
        guest.awaitMark("holders-done", STEP);
        assertEquals("x011", hp.get(11).readString(4, STEP), "a remaining hot-added port still carries data");

        // Re-add a removed id under a new name: it works again.
        JsonNode again = ctl.call(ctl.request("add-port").put("spec", "nr=10,name=hp.again,socket=" + sock("again")));
        assertTrue(again.path("ok").asBoolean(), again::toString);
        HostPort a = host(sock("again"));
        a.write("again", STEP);
        assertEquals("again", guest.awaitMark("again", STEP));
        assertEquals("back", a.readString(4, STEP));
        hotplugDone.countDown();

        assertEquals(outSha, get(fromGuest), "guest->host stream lost nothing");
        String inSha = get(toGuest);
        out.write("done", STEP);
        GuestResult r = guest.awaitExit().assertSucceeded();
        List<String> names = new ArrayList<>();
        for (int n = FIRST; n < FIRST + COUNT; n++) {
            names.add("vport0p" + n + " hp." + n);
        }
        assertEquals(names.stream().sorted().toList(), r.marks("name").stream().map(String::strip).sorted().toList(),
                "every hot-added port appeared in the guest under its id and name");
        assertEquals(Integer.toString(STREAM), r.mark("in-bytes").strip());
        assertEquals(inSha, r.mark("in-sha"), "host->guest stream lost nothing");

        // Events: every add and remove, with ids and names; the held ports were reported closed.
        Await.until("the last events", STEP, () -> count(events, "port-removed") >= COUNT / 2);
        assertEquals(COUNT + 1, count(events, "port-added"), "port-added events");
        assertEquals(COUNT / 2, count(events, "port-removed"), "port-removed events");
        assertTrue(count(events, "port-ready") >= COUNT + 1, "the guest reported every hot-added port ready");
        assertEquals(COUNT / 2, events.stream().filter(e -> e.path("event").asText().equals("host-disconnected")
                && e.path("data").path("detail").asText().equals("port removed")).count(),
                "each removal closed its host end");
        for (int n = 10; n <= 26; n += 2) {
            int id = n;
            assertTrue(events.stream().anyMatch(e -> e.path("event").asText().equals("guest-closed")
                    && e.path("data").path("nr").asInt() == id && e.path("data").path("name").asText().equals("hp." + id)),
                    "guest-closed event for hp." + n);
        }
        assertTrue(events.stream().anyMatch(e -> e.path("event").asText().equals("guest-open")
                && e.path("data").path("name").asText().equals("hp.again")), "guest-open event for the re-added port");
    }

    private static long count(List<JsonNode> events, String type) {
        return events.stream().filter(e -> e.path("event").asText().equals(type)).count();
    }

    static Map<Integer, JsonNode> listPorts(ApiClient ctl) {
        try {
            JsonNode r = ctl.call(ctl.request("list-ports"));
            Map<Integer, JsonNode> out = new TreeMap<>();
            r.path("ports").forEach(p -> out.put(p.path("nr").asInt(), p));
            return out;
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** Reads the guest's stream, 4 KiB at a time with pauses until the hot-plug work is done. */
    private static String pacedRead(HostPort port, CountDownLatch fast, Duration within) {
        MessageDigest md = Digests.sha256();
        int left = STREAM;
        while (left > 0) {
            int n = Math.min(left, fast.getCount() > 0 ? 4096 : 65536);
            md.update(port.readExactly(n, within));
            left -= n;
            pace(fast);
        }
        return Digests.hex(md.digest());
    }

    private static String pacedWrite(HostPort port, CountDownLatch fast, Duration within) {
        MessageDigest md = Digests.sha256();
        SplittableRandom rnd = new SplittableRandom(77);
        byte[] chunk = new byte[65536];
        int left = STREAM;
        while (left > 0) {
            int n = Math.min(left, fast.getCount() > 0 ? 4096 : 65536);
            byte[] b = n == chunk.length ? chunk : new byte[n];
            rnd.nextBytes(b);
            md.update(b);
            port.write(b, within);
            left -= n;
            pace(fast);
        }
        return Digests.hex(md.digest());
    }

    /** The streams' pace while hot-plugging: part of the scenario's input, not a wait for a result. */
    private static void pace(CountDownLatch fast) {
        try {
            fast.await(10, java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
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
