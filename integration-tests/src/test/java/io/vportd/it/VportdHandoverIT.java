package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.vportd.console.ctl.ApiClient;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Live hand-over under a running guest (issue 12): while the guest streams 64 MiB each way on two
 * ports, writes numbered lines to its console and answers requests on an agent-style port, and
 * after a port was hot-added, vportd is replaced by a new process five times with
 * {@code --take-over}. Nothing may show: both streams arrive whole (sha256 both ends), every
 * console line arrives once and in order, every request is answered, the hot-added port still
 * works, host clients never see end of file, QEMU logs no vhost error and the guest kernel no
 * stall. Refusals are checked on the way: a take-over of a socket nobody serves fails at once and
 * creates nothing; a new process that dies after receiving the state (simulated by a client that
 * reads the state and hangs up) leaves the running daemon serving as before.
 */
class VportdHandoverIT {

    static final Duration STEP = Duration.ofSeconds(180);
    static final int MAX_PORTS = 8;
    static final int STREAM = 64 * 1024 * 1024;
    static final int HANDOVERS = 5;
    static final Pattern PAUSE = Pattern.compile("paused ([0-9.]+) ms");

    private Path dir;
    private final List<VportdProcess> daemons = new ArrayList<>();
    private Guest guest;
    private final List<HostPort> hosts = new ArrayList<>();
    private final List<AutoCloseable> closers = new ArrayList<>();

    @BeforeEach
    void prepare() throws IOException {
        Rig.require();
        dir = Files.createTempDirectory("vportd-ho-");
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

    private Path sock(String name) {
        return dir.resolve(name + ".sock");
    }

    private HostPort host(Path socket) {
        HostPort h = HostPort.connect(socket, STEP);
        hosts.add(h);
        return h;
    }

    @Test
    @Timeout(1200)
    void fiveHandOversUnderStreamsConsoleAndRequestsChangeNothingTheGuestCanSee() throws Exception {
        Path api = dir.resolve("api.sock");
        Path vhost = dir.resolve("vportd.sock");
        VportdProcess first = VportdProcess.start("ho-0", vhost, List.of("--max-ports", Integer.toString(MAX_PORTS),
                "--api-socket", api.toString(),
                "--port", "nr=0,console,log=" + dir.resolve("con.log") + ",log-max=4K,log-keep=200,socket=" + sock("con"),
                "--port", "nr=1,name=stream.out,socket=" + sock("out"),
                "--port", "nr=2,name=stream.in,socket=" + sock("in"),
                "--port", "nr=3,name=agent,socket=" + sock("agent")), Duration.ofSeconds(30));
        daemons.add(first);
        guest = Guest.builder()
                .name("vportd-handover")
                .scenario(GuestScripts.script("""
                        need_ports stream.out stream.in agent
                        head -c %1$d /dev/urandom > /tmp/out || fail "no random data"
                        mark out-sha "$(sha256sum /tmp/out | cut -d' ' -f1)"
                        ( exec 3<>"$(port agent)"; while read -r l <&3; do echo "re:$l" >&3; done ) &
                        ( i=0; while [ ! -e /tmp/stop ]; do echo "tick $i" > /dev/hvc0; i=$((i + 1)); sleep 0.05; done
                          echo "tick end $i" > /dev/hvc0 ) &
                        tk=$!
                        cat /tmp/out > "$(port stream.out)" &
                        sw=$!
                        head -c %1$d < "$(port stream.in)" > /tmp/in &
                        sr=$!
                        mark streaming
                        need_ports hot
                        mark hot-seen
                        wait $sw || fail "stream writer failed"
                        wait $sr
                        mark in-bytes "$(wc -c < /tmp/in)"
                        mark in-sha "$(sha256sum /tmp/in | cut -d' ' -f1)"
                        t=$(recv_token "$(port hot)" 8)
                        [ "$t" = hot-ping ] || fail "hot port got '$t'"
                        printf hot-pong > "$(port hot)" || fail "write hot"
                        touch /tmp/stop
                        wait $tk
                        [ "$(recv_token "$(port stream.out)" 4)" = done ] || fail "no acknowledgement"
                        """.formatted(STREAM)))
                .qemuArgs(VportdDevice.qemuArgs(vhost, MAX_PORTS))
                .socketDir(dir)
                .memoryMiB(768)
                .timeout(Duration.ofSeconds(1000))
                .start();

        HostPort console = host(sock("con"));
        HostPort out = host(sock("out"));
        HostPort in = host(sock("in"));
        HostPort agent = host(sock("agent"));
        List<String> ticks = new CopyOnWriteArrayList<>();
        // Each host side on its own thread (the common pool may have a single worker on a small machine).
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newCachedThreadPool();
        closers.add(pool::shutdownNow);
        CompletableFuture<Void> consoleReader = CompletableFuture.runAsync(() -> readLines(console, ticks), pool);
        String outSha = guest.awaitMark("out-sha", STEP);
        CompletableFuture<String> fromGuest = CompletableFuture.supplyAsync(
                () -> out.readSha256(STREAM, Duration.ofSeconds(900)), pool);
        CompletableFuture<String> toGuest = CompletableFuture.supplyAsync(() -> writeRandom(in, Duration.ofSeconds(900)), pool);
        guest.awaitMark("streaming", STEP);

        ApiClient ctl = ApiClient.connect(api);
        JsonNode added = ctl.call(ctl.request("add-port").put("spec", "nr=5,name=hot,socket=" + sock("hot")));
        ctl.close();
        assertTrue(added.path("ok").asBoolean(), added::toString);
        HostPort hot = host(sock("hot"));
        guest.awaitMark("hot-seen", STEP);
        assertEquals("re:ping-0", ask(agent, "ping-0"));

        // Nobody serves this socket: the take-over fails at once and creates nothing.
        List<Path> before = list(dir);
        VportdProcess stray = VportdProcess.launch("ho-stray", dir.resolve("nobody.sock"), List.of("--take-over"));
        daemons.add(stray);
        assertNotEquals(0, stray.awaitExit(Duration.ofSeconds(60)), "a take-over with nobody serving fails");
        assertTrue(stray.log().contains("no vportd serves"), stray::log);
        assertEquals(before, list(dir), "a failed take-over creates nothing");

        VportdProcess current = first;
        List<Double> pauses = new ArrayList<>();
        for (int round = 1; round <= HANDOVERS; round++) {
            if (round == 3) {
                // A new process that dies once it has the state: the running daemon resumes.
                abandonAfterState(vhost);
                current.awaitLog("hand-over did not happen", STEP);
                assertTrue(current.isAlive(), "the running daemon serves on after an abandoned hand-over");
                assertEquals("re:abandoned", ask(agent, "abandoned"));
            }
            VportdProcess next = VportdProcess.launch("ho-" + round, vhost, List.of("--take-over", "--log-level", "info"));
            daemons.add(next);
            String done = next.awaitLog("hand-over complete", STEP);
            Matcher m = PAUSE.matcher(done);
            assertTrue(m.find(), done);
            pauses.add(Double.parseDouble(m.group(1)));
            assertEquals(0, current.awaitExit(Duration.ofSeconds(60)), "the old daemon exits 0 once the new one serves");
            current = next;
            assertEquals("re:ping-" + round, ask(agent, "ping-" + round), "the agent port answers after hand-over " + round);
        }
        System.out.println("hand-over pauses (ms): " + pauses);

        String inSha = get(toGuest);
        assertEquals(outSha, get(fromGuest), "guest->host stream: every byte once, in order, across the hand-overs");
        hot.write("hot-ping", STEP);
        assertEquals("hot-pong", hot.readString(8, STEP), "the port hot-added before the hand-overs still works");
        out.write("done", STEP);
        GuestResult r = guest.awaitExit().assertSucceeded();
        assertEquals(Integer.toString(STREAM), r.mark("in-bytes").strip());
        assertEquals(inSha, r.mark("in-sha"), "host->guest stream: every byte once, in order, across the hand-overs");
        // Counters went on across the hand-overs: the last daemon counts every byte of both streams.
        try (ApiClient last = ApiClient.connect(api)) {
            java.util.Map<Integer, JsonNode> ports = VportdHotplugIT.listPorts(last);
            assertTrue(ports.get(1).path("to-host").path("bytes").asLong() >= STREAM, () -> "port 1: " + ports.get(1));
            assertTrue(ports.get(2).path("to-guest").path("bytes").asLong() >= STREAM, () -> "port 2: " + ports.get(2));
        }

        consoleReader.get();
        assertTrue(ticks.size() > 10, "console lines arrived: " + ticks.size());
        String last = ticks.get(ticks.size() - 1);
        assertTrue(last.startsWith("tick end "), last);
        int n = Integer.parseInt(last.substring("tick end ".length()));
        assertEquals(n + 1, ticks.size(), "every console line arrived exactly once");
        for (int i = 0; i < n; i++) {
            assertEquals("tick " + i, ticks.get(i), "console lines in order, none lost or repeated");
        }
        // The console's log went on across the hand-overs too: every line once, in order, over the rotated files.
        // (Files are filled to exactly log-max, so a line may straddle two: join them first.)
        StringBuilder joined = new StringBuilder();
        for (int i = 200; i >= 0; i--) {
            Path f = dir.resolve(i == 0 ? "con.log" : "con.log." + i);
            if (Files.exists(f)) {
                joined.append(Files.readString(f, StandardCharsets.ISO_8859_1));
            }
        }
        List<String> logged = new ArrayList<>();
        for (String line : joined.toString().split("\n")) {
            String l = line.replace("\r", "");
            if (l.startsWith("tick")) {
                logged.add(l);
            }
        }
        assertEquals(ticks, logged, "the console log holds every line exactly once, in order, across five hand-overs");
        String output = guest.output();
        for (String bad : List.of("Unexpected end-of-file", "Failed to set msg fds", "ring restore failed", "vhost VQ",
                "soft lockup", "rcu_sched detected stall", "rcu: INFO", "self-detected stall")) {
            assertFalse(output.contains(bad), () -> "guest/QEMU output contains '" + bad + "':\n" + output);
        }
    }

    /** Sends a request line on the agent port and reads the guest's answer line. */
    static String ask(HostPort agent, String request) {
        agent.write(request + "\n", STEP);
        StringBuilder b = new StringBuilder();
        while (true) {
            String c = agent.readString(1, STEP);
            if (c.equals("\n")) {
                return b.toString();
            }
            b.append(c);
        }
    }

    /** Reads console lines until "tick end N" arrives. */
    private static void readLines(HostPort console, List<String> lines) {
        readTicks(console, lines, Duration.ofSeconds(900));
    }

    /** Reads console lines, keeping the "tick" ones, until "tick end N" arrives. */
    static void readTicks(HostPort console, List<String> lines, Duration within) {
        StringBuilder b = new StringBuilder();
        while (true) {
            String c = console.readString(1, within);
            if (c.equals("\n")) {
                String line = b.toString().replace("\r", "");
                b.setLength(0);
                if (line.startsWith("tick")) {
                    lines.add(line);
                    if (line.startsWith("tick end")) {
                        return;
                    }
                }
            } else {
                b.append(c);
            }
        }
    }

    private static String writeRandom(HostPort port, Duration within) {
        MessageDigest md = Digests.sha256();
        SplittableRandom rnd = new SplittableRandom(12);
        byte[] chunk = new byte[65536];
        for (int left = STREAM; left > 0; left -= chunk.length) {
            rnd.nextBytes(chunk);
            md.update(chunk);
            port.write(chunk, within);
        }
        return Digests.hex(md.digest());
    }

    /**
     * Plays a new vportd that dies as soon as it has the running daemon's state: asks for the
     * hand-over, reads the state record, and hangs up without answering (its descriptors are
     * never taken, so the kernel drops them).
     */
    private static void abandonAfterState(Path vhost) throws IOException {
        abandonAfterState(vhost.resolveSibling(vhost.getFileName() + ".handover"), 1);
    }

    /** As above, on the hand-over socket {@code handoverSocket}, asking for state record {@code version}. */
    static void abandonAfterState(Path handoverSocket, int version) throws IOException {
        try (SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            c.connect(UnixDomainSocketAddress.of(handoverSocket));
            byte[] req = ("{\"op\":\"take-over\",\"version\":" + version + ",\"pid\":0}").getBytes(StandardCharsets.UTF_8);
            ByteBuffer b = ByteBuffer.allocate(4 + req.length).order(ByteOrder.nativeOrder());
            b.putInt(req.length).put(req).flip();
            while (b.hasRemaining()) {
                c.write(b);
            }
            String header = new String(frame(c), StandardCharsets.UTF_8);
            assertTrue(header.contains("\"state\""), header);
            assertTrue(new String(frame(c), StandardCharsets.UTF_8).contains("vportd-handover"), "the state record came");
        }
    }

    private static byte[] frame(SocketChannel c) throws IOException {
        ByteBuffer len = ByteBuffer.allocate(4).order(ByteOrder.nativeOrder());
        readFully(c, len);
        ByteBuffer body = ByteBuffer.allocate(len.getInt(0));
        readFully(c, body);
        return body.array();
    }

    private static void readFully(SocketChannel c, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (c.read(b) < 0) {
                throw new IOException("hand-over socket closed");
            }
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
