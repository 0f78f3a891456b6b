package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Real-guest scenarios for a multiport virtio-console. Subclasses name the device under test
 * ({@link #device()}); the scenarios, guest scripts and assertions are the same for every device.
 */
public abstract class VirtioSerialScenarios {

    static final PortSpec CONSOLE = PortSpec.console(0, "org.test.console");
    static final PortSpec ONE = PortSpec.port(1, "org.test.one");
    static final PortSpec TWO = PortSpec.port(2, "org.test.two");
    static final List<PortSpec> PORTS = List.of(CONSOLE, ONE, TWO);

    static final Duration GUEST_TIMEOUT = Duration.ofSeconds(150);
    static final Duration STEP = Duration.ofSeconds(90);
    static final int BULK = 16 * 1024 * 1024;

    /** The device the scenarios run against. */
    protected abstract SerialDeviceUnderTest device();

    private Path socketDir;
    private SerialDeviceUnderTest.Attachment attachment;
    private Guest guest;
    private final List<HostPort> hostPorts = new ArrayList<>();

    @BeforeEach
    void prepare() throws IOException {
        Rig.require();
        socketDir = Files.createTempDirectory("vportd-sock-");
    }

    @AfterEach
    void tearDown() throws IOException {
        hostPorts.forEach(HostPort::close);
        if (guest != null) {
            guest.close();
        }
        if (attachment != null) {
            attachment.close();
        }
        TempDirs.removeFlat(socketDir);
    }

    private Guest boot(String testName, String body) throws IOException {
        attachment = device().attach(socketDir, PORTS);
        guest = Guest.builder()
                .name(device().name() + "-" + testName)
                .scenario(GuestScripts.script(body))
                .qemuArgs(attachment.qemuArgs())
                .socketDir(socketDir)
                .timeout(GUEST_TIMEOUT)
                .start();
        return guest;
    }

    private HostPort host(PortSpec p) {
        HostPort hp = attachment.connectHost(p, STEP);
        hostPorts.add(hp);
        Guest g = guest;
        hp.abortWhen(() -> !g.isAlive(), "the guest has ended (its console is in the test log)");
        return hp;
    }

    /**
     * Two named generic ports and a console appear in the guest: sysfs names, the
     * /dev/virtio-ports links and /dev/hvc0, which carries text to the console's host end.
     */
    @Test
    @Timeout(300)
    void namedPortsAndConsoleAppear() throws IOException {
        Guest g = boot("ports", """
                for d in /sys/class/virtio-ports/*; do
                  if [ -f "$d/name" ]; then mark port "${d##*/}" "$(cat "$d/name")"; else mark port "${d##*/}"; fi
                done
                for l in /dev/virtio-ports/*; do
                  [ -L "$l" ] && mark link "${l##*/}" "$(readlink "$l")"
                done
                [ -c /dev/hvc0 ] && mark hvc0 present
                need_ports org.test.one
                [ "$(recv_token "$(port org.test.one)" 2)" = go ] || fail "bad token"
                # no newline: the tty would turn it into CR LF
                printf console-says-hello > /dev/hvc0 || fail "cannot write /dev/hvc0"
                mark hvc0 written
                """);
        HostPort console = host(CONSOLE);
        HostPort one = host(ONE);
        one.write("go", STEP);
        assertEquals("console-says-hello", console.readString("console-says-hello".length(), STEP),
                "text written to /dev/hvc0 reaches the console's host end");
        GuestResult r = g.awaitExit().assertSucceeded();

        Map<String, String> nameToDev = new TreeMap<>();
        Set<String> devs = new TreeSet<>();
        for (String m : r.marks("port")) {
            String[] f = m.split(" ", 2);
            devs.add(f[0]);
            if (f.length == 2) {
                nameToDev.put(f[1], f[0]);
            }
        }
        Set<String> expectedNames = new TreeSet<>();
        PORTS.forEach(p -> expectedNames.add(p.name()));
        assertEquals(3, devs.size(), "the guest sees three ports: " + devs);
        assertEquals(expectedNames, nameToDev.keySet(), "port names in /sys/class/virtio-ports/*/name");

        Map<String, String> links = new HashMap<>();
        for (String m : r.marks("link")) {
            String[] f = m.split(" ", 2);
            links.put(f[0], f[1]);
        }
        Map<String, String> expectedLinks = new HashMap<>();
        nameToDev.forEach((name, dev) -> expectedLinks.put(name, "../" + dev));
        assertEquals(expectedLinks, links, "/dev/virtio-ports/<name> links point at the named ports");
        assertEquals(List.of("present", "written"), r.marks("hvc0"), "the console is /dev/hvc0");
    }

    /** 16 MiB of random bytes each way, byte-exact (SHA-256 on both sides). */
    @Test
    @Timeout(400)
    void bulkTransferBothWaysIsByteExact() throws Exception {
        Guest g = boot("bulk", """
                need_ports org.test.one org.test.two
                head -c %d /dev/urandom > /tmp/g2h || fail "no random data"
                mark g2h-sha "$(sha256sum /tmp/g2h | cut -d' ' -f1)"
                cat /tmp/g2h > "$(port org.test.one)" || fail "write to org.test.one failed"
                rm -f /tmp/g2h
                mark g2h-sent
                [ "$(recv_token "$(port org.test.two)" 2)" = go ] || fail "bad token"
                exec 3< "$(port org.test.two)"
                mark h2g-open
                head -c %d <&3 > /tmp/h2g
                exec 3<&-
                mark h2g-bytes "$(wc -c < /tmp/h2g)"
                mark h2g-sha "$(sha256sum /tmp/h2g | cut -d' ' -f1)"
                """.formatted(BULK, BULK));
        HostPort one = host(ONE);
        HostPort two = host(TWO);
        CompletableFuture<String> g2hHost = CompletableFuture.supplyAsync(() -> one.readSha256(BULK, STEP.multipliedBy(2)));
        String g2hGuest = g.awaitMark("g2h-sha", STEP);
        assertEquals(g2hGuest, get(g2hHost), "guest->host 16 MiB: SHA-256 on the host equals the guest's");
        two.write("go", STEP);
        g.awaitMark("h2g-open", STEP);
        String h2gHost = two.writeRandom(BULK, 0x5EEDL, STEP.multipliedBy(2));
        GuestResult r = g.awaitExit().assertSucceeded();
        assertEquals(Integer.toString(BULK), r.mark("h2g-bytes").strip(), "host->guest byte count");
        assertEquals(h2gHost, r.mark("h2g-sha"), "host->guest 16 MiB: SHA-256 in the guest equals the host's");
    }

    /**
     * Connection state both ways: while the host is away a guest read ends with EOF; after the
     * host connects data flows; what the guest writes reaches the host; host data sent while the
     * guest has the port closed waits for the guest to open it; when the host goes away a
     * blocked guest read ends with EOF.
     */
    @Test
    @Timeout(300)
    void openCloseAndConnectDisconnectAreSeen() throws IOException {
        Guest g = boot("openclose", """
                need_ports org.test.one org.test.two
                P=$(port org.test.one)
                mark eof-while-disconnected "$(head -c 1 "$P" | wc -c)"
                mark poll-while-disconnected "$(porttool poll < "$P")"
                exec 3<> "$P"
                mark waiting-for-host
                i=0; got=""
                while [ $i -lt 1200 ]; do
                  got=$(head -c 5 <&3)
                  [ -n "$got" ] && break
                  i=$((i + 1)); sleep 0.05
                done
                mark got "$got"
                mark poll-while-connected "$(porttool poll <&3)"
                printf 'from-guest' >&3 || fail "write failed"
                exec 3>&-
                mark guest-closed
                [ "$(recv_token "$(port org.test.two)" 2)" = go ] || fail "bad token"
                exec 3< "$P"
                mark late "$(head -c 4 <&3)"
                mark eof-after-host-disconnect "$(head -c 1 <&3 | wc -c)"
                mark poll-after-host-disconnect "$(porttool poll <&3)"
                exec 3<&-
                """);
        assertEquals("0", g.awaitMark("eof-while-disconnected", STEP).strip(),
                "a guest read ends at once with EOF while the host is not connected");
        assertPollHas(g.awaitMark("poll-while-disconnected", STEP), "POLLHUP", true,
                "poll reports POLLHUP while the host is not connected");
        g.awaitMark("waiting-for-host", STEP);
        HostPort one = host(ONE);
        one.write("hello", STEP);
        assertEquals("hello", g.awaitMark("got", STEP), "data flows once the host is connected");
        String connected = g.awaitMark("poll-while-connected", STEP);
        assertPollHas(connected, "POLLHUP", false, "no POLLHUP once the host is connected");
        assertPollHas(connected, "POLLOUT", true, "the port is writable once the host is connected");
        assertEquals("from-guest", one.readString("from-guest".length(), STEP), "guest writes reach the host");
        g.awaitMark("guest-closed", STEP);
        one.write("late", STEP);
        HostPort two = host(TWO);
        two.write("go", STEP);
        assertEquals("late", g.awaitMark("late", STEP),
                "host data sent while the guest had the port closed arrives when it opens");
        one.close();
        assertEquals("0", g.awaitMark("eof-after-host-disconnect", STEP).strip(),
                "a blocked guest read ends with EOF when the host disconnects");
        assertPollHas(g.awaitMark("poll-after-host-disconnect", STEP), "POLLHUP", true,
                "poll reports POLLHUP again after the host disconnected");
        g.awaitExit().assertSucceeded();
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

    static void assertPollHas(String events, String event, boolean expected, String what) {
        boolean has = List.of(events.strip().split(" ")).contains(event);
        assertEquals(expected, has, what + " (poll events: '" + events + "')");
    }
}
