package io.vportd.it;

import io.vportd.testsupport.Await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Real-guest tests of what vportd adds beyond the shared scenarios: host-chosen sparse port ids,
 * several consoles, console size, heavy traffic on two ports at once, a slow and a late host,
 * and host reconnects.
 */
class VportdPortsIT {

    static final Duration STEP = Duration.ofSeconds(120);
    static final int MAX_PORTS = 8;

    private Path dir;
    private VportdProcess daemon;
    private Guest guest;
    private final List<HostPort> hosts = new ArrayList<>();

    @BeforeEach
    void prepare() throws IOException {
        Rig.require();
        dir = Files.createTempDirectory("vportd-ports-");
    }

    @AfterEach
    void tearDown() throws IOException {
        hosts.forEach(HostPort::close);
        if (guest != null) {
            guest.close();
        }
        if (daemon != null) {
            daemon.close();
            assertTrue(!daemon.log().contains("Exception"), () -> "vportd logged an exception:\n" + daemon.log());
        }
        TempDirs.removeFlat(dir);
    }

    private Path sock(String name) {
        return dir.resolve(name + ".sock");
    }

    private Guest boot(String name, int memoryMiB, String body, String... portSpecs) throws IOException {
        List<String> args = new ArrayList<>(List.of("--max-ports", Integer.toString(MAX_PORTS)));
        for (String spec : portSpecs) {
            args.add("--port");
            args.add(spec);
        }
        Path vhost = dir.resolve("vportd.sock");
        daemon = VportdProcess.start(name, vhost, args, Duration.ofSeconds(30));
        guest = Guest.builder()
                .name("vportd-" + name)
                .scenario(GuestScripts.script(body))
                .qemuArgs(VportdDevice.qemuArgs(vhost, MAX_PORTS))
                .socketDir(dir)
                .memoryMiB(memoryMiB)
                .timeout(Duration.ofSeconds(400))
                .start();
        return guest;
    }

    private HostPort host(String name) {
        HostPort h = HostPort.connect(sock(name), STEP);
        hosts.add(h);
        return h;
    }

    /**
     * Ports 0 and 1 consoles, 3 and 7 named, max ports 8: two hvc consoles carry text to their
     * own host ends, vport0p3 and vport0p7 exist with names and links, there is no port 2, and the
     * console size given on the command line is what the guest's tty reports (and the resize-order
     * setting flips the fields, as Debian trixie's 6.12 kernel reads cols first).
     */
    @Test
    @Timeout(300)
    void sparseIdsTwoConsolesNamesAndSize() throws IOException {
        Guest g = boot("layout", 512, """
                for d in /sys/class/virtio-ports/*; do
                  n=""; [ -f "$d/name" ] && n=$(cat "$d/name")
                  mark port "${d##*/}" "$n"
                done
                for l in /dev/virtio-ports/*; do [ -L "$l" ] && mark link "${l##*/}" "$(readlink "$l")"; done
                [ -e /dev/vport0p2 ] && mark port2 present || mark port2 absent
                mark size0 "$(stty -F /dev/hvc0 size)"
                mark size1 "$(stty -F /dev/hvc1 size)"
                printf hvc0-text > /dev/hvc0 || fail "write hvc0"
                printf hvc1-text > /dev/hvc1 || fail "write hvc1"
                mark consoles-written
                """,
                "nr=0,console,cols=123,rows=45,socket=" + sock("c0"),
                "nr=1,console,cols=100,rows=30,resize-order=rows-cols,socket=" + sock("c1"),
                "nr=3,name=org.test.three,socket=" + sock("p3"),
                "nr=7,name=org.test.seven,socket=" + sock("p7"));
        HostPort c0 = host("c0");
        HostPort c1 = host("c1");
        assertEquals("hvc0-text", c0.readString(9, STEP), "/dev/hvc0 is port 0's console");
        assertEquals("hvc1-text", c1.readString(9, STEP), "/dev/hvc1 is port 1's console");
        GuestResult r = g.awaitExit().assertSucceeded();
        assertEquals(List.of("vport0p0 ", "vport0p1 ", "vport0p3 org.test.three", "vport0p7 org.test.seven"),
                r.marks("port").stream().map(String::strip).map(s -> s.contains(" ") ? s : s + " ").toList(),
                "the guest has exactly the configured port ids, with their names");
        assertEquals(List.of("org.test.seven ../vport0p7", "org.test.three ../vport0p3"),
                r.marks("link").stream().sorted().toList(), "/dev/virtio-ports links");
        assertEquals("absent", r.mark("port2"));
        // stty prints "rows cols". The default order (the spec's cols-rows) is what this kernel reads...
        assertEquals("45 123", r.mark("size0").strip(), "stty size of the first console, default resize order");
        // ...and rows-cols, meant for kernels that read rows first, arrives swapped here: the setting takes effect.
        assertEquals("100 30", r.mark("size1").strip(), "stty size of the second console with resize-order=rows-cols");
    }

    /** 64 MiB of random bytes each way on two ports at the same time, byte-exact. */
    @Test
    @Timeout(900)
    void bulkBothWaysOnTwoPortsAtOnce() throws Exception {
        int size = 64 * 1024 * 1024;
        Guest g = boot("bulk64", 1024, """
                head -c %d /dev/urandom > /tmp/out || fail "no random data"
                mark out-sha "$(sha256sum /tmp/out | cut -d' ' -f1)"
                # One open descriptor for the data and the acknowledgement: bytes that reach a port
                # the guest has just closed are thrown away by the guest.
                exec 4<> "$(port org.test.three)"
                cat /tmp/out >&4 &
                writer=$!
                head -c %d < "$(port org.test.seven)" > /tmp/in
                wait $writer || fail "writer failed"
                mark in-bytes "$(wc -c < /tmp/in)"
                mark in-sha "$(sha256sum /tmp/in | cut -d' ' -f1)"
                [ "$(head -c 4 <&4)" = done ] || fail "no acknowledgement"
                """.formatted(size, size),
                "nr=3,name=org.test.three,socket=" + sock("p3"),
                "nr=7,name=org.test.seven,socket=" + sock("p7"));
        HostPort three = host("p3");
        HostPort seven = host("p7");
        Duration bulk = Duration.ofSeconds(600);
        CompletableFuture<String> fromGuest = CompletableFuture.supplyAsync(() -> three.readSha256(size, bulk));
        CompletableFuture<String> toGuest = CompletableFuture.supplyAsync(() -> seven.writeRandom(size, 64, bulk));
        String guestOut = g.awaitMark("out-sha", STEP);
        assertEquals(guestOut, get(fromGuest), "guest->host 64 MiB on port 3");
        String hostOut = get(toGuest);
        three.write("done", STEP);
        GuestResult r = g.awaitExit().assertSucceeded();
        assertEquals(Integer.toString(size), r.mark("in-bytes").strip());
        assertEquals(hostOut, r.mark("in-sha"), "host->guest 64 MiB on port 7");
    }

    /**
     * The guest starts writing 4 MiB while no host is connected (its write waits), the host
     * connects 5 s later and then reads slowly, 4 KiB at a time with pauses: no byte is lost.
     */
    @Test
    @Timeout(600)
    void lateAndSlowHostLosesNothing() throws Exception {
        int size = 4 * 1024 * 1024;
        Guest g = boot("slow", 512, """
                head -c %d /dev/urandom > /tmp/out || fail "no random data"
                mark out-sha "$(sha256sum /tmp/out | cut -d' ' -f1)"
                mark writing
                exec 3<> "$(port org.test.three)"
                cat /tmp/out >&3 || fail "write failed"
                mark written
                # Bytes still in the ring die with the VM: stay up until the host has them all.
                [ "$(head -c 4 <&3)" = done ] || fail "no acknowledgement"
                """.formatted(size),
                "nr=3,name=org.test.three,socket=" + sock("p3"));
        String sha = g.awaitMark("out-sha", STEP);
        g.awaitMark("writing", STEP);
        // The scenario itself: the host arrives late. This pause is the test's input, not a wait for a result.
        Thread.sleep(5000);
        assertTrue(g.output().lines().noneMatch(l -> l.contains("VPORTD-MARK written")),
                "the guest's write must wait for a host, not complete into nowhere");
        HostPort three = host("p3");
        assertEquals(sha, three.readSha256Slowly(size, 4096, Duration.ofMillis(2), Duration.ofSeconds(400)),
                "every byte arrives, in order, to a late and slow reader");
        three.write("done", STEP);
        g.awaitExit().assertSucceeded();
    }

    /**
     * The host disconnects and reconnects; a second host client meanwhile is refused; the guest
     * sees end of file while nobody is connected and data again after the reconnect.
     */
    @Test
    @Timeout(300)
    void hostReconnectsAndSecondClientIsRefused() throws Exception {
        Guest g = boot("reconnect", 512, """
                P=$(port org.test.three)
                mark first "$(recv_token "$P" 3)"
                mark first-done
                i=0
                while [ $i -lt 600 ]; do
                  [ "$(head -c 1 "$P" | wc -c)" = 0 ] && break
                  i=$((i + 1)); sleep 0.05
                done
                mark eof-after-disconnect
                mark second "$(recv_token "$P" 3)"
                printf back > "$P" || fail "write back failed"
                mark wrote-back
                """,
                "nr=3,name=org.test.three,socket=" + sock("p3"));
        HostPort first = host("p3");
        HostPort intruder = HostPort.connect(sock("p3"), STEP);
        hosts.add(intruder);
        assertEquals(0, intruder.readUntilEof(STEP), "a second host client is closed at once");
        first.write("one", STEP);
        assertEquals("one", g.awaitMark("first", STEP));
        g.awaitMark("first-done", STEP);
        first.close();
        g.awaitMark("eof-after-disconnect", STEP);
        HostPort again = host("p3");
        again.write("two", STEP);
        assertEquals("two", g.awaitMark("second", STEP), "data flows after the host reconnects");
        assertEquals("back", again.readString(4, STEP));
        g.awaitExit().assertSucceeded();
    }

    /**
     * The file and stdio endpoints: guest output on a named port is appended to a file, and the
     * console on the daemon's standard output.
     */
    @Test
    @Timeout(300)
    void fileAndStdioEndpointsCarryGuestOutput() throws IOException {
        Path logFile = dir.resolve("guest.log");
        Files.writeString(logFile, "existing line\n");
        Guest g = boot("file-stdio", 512, """
                need_ports org.test.log
                echo "from-the-guest-log-port" > "$(port org.test.log)" || fail "write log port"
                printf 'console-to-stdout-marker' > /dev/hvc0 || fail "write hvc0"
                mark written
                """,
                "nr=0,console,stdio",
                "nr=2,name=org.test.log,file=" + logFile);
        g.awaitExit().assertSucceeded();
        Await.until("the console text on vportd's standard output", STEP,
                () -> daemon.log().contains("console-to-stdout-marker"));
        assertEquals("existing line\nfrom-the-guest-log-port\n", Files.readString(logFile),
                "guest output is appended to the file");
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
