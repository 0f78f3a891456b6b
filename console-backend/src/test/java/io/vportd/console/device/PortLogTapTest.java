package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.cli.PortSpecParser;
import io.vportd.console.control.ControlMessage;
import io.vportd.console.control.PortConfig;
import io.vportd.console.portlog.LogFollower;
import io.vportd.sys.EventFd;
import io.vportd.sys.Fd;
import io.vportd.testsupport.Await;
import io.vportd.vring.testing.GuestRam;
import io.vportd.vring.testing.RingDriver;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The log tap on the data plane, driven by an in-process fake guest: a generic port's log holds
 * exactly what the host took, once, also when a chain is taken in pieces across a ring restart;
 * a late host client of a console gets exactly the replay ring and then the live output; a
 * follower's copy and its live bytes meet without a gap; a port whose log cannot be opened is
 * refused whole.
 */
@Timeout(60)
class PortLogTapTest {

    static final int MAX_PORTS = 2;
    static final int RING = 256;
    static final Duration DEADLINE = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    private ConsoleDevice device;
    private GuestRam ram;
    private final RingDriver[] rings = new RingDriver[2 * (MAX_PORTS + 1)];
    private final Fd[] kicks = new Fd[rings.length];
    private final Fd[] calls = new Fd[rings.length];

    private void boot(PortConfig port) throws IOException {
        boot(port, PortLogContext.DEFAULT);
    }

    private void boot(PortConfig port, PortLogContext context) throws IOException {
        device = new ConsoleDevice(MAX_PORTS, List.of(port), context);
        ram = new GuestRam(32L << 20, 1);
        GuestRings.startAll(device, ram, RING, rings, kicks, calls);
        for (int i = 0; i < 16; i++) {
            rings[QueueMap.CONTROL_RX].addInBuffer(4096);
        }
        EventFd.signal(kicks[QueueMap.CONTROL_RX].fd());
        guestSays(0xFFFFFFFF, ControlMessage.DEVICE_READY, 1);
        guestSays(port.id(), ControlMessage.PORT_READY, 1);
    }

    private void start(int q, int firstAvail) {
        GuestRings.start(device, ram, RING, rings, kicks, calls, q, firstAvail);
    }

    private void guestSays(int id, int event, int value) {
        GuestRings.guestSays(rings, kicks, id, event, value, DEADLINE);
    }

    @AfterEach
    void shutdown() {
        GuestRings.closeAll(device, rings, kicks, calls, ram);
    }

    private static void await(String what, BooleanSupplier condition) {
        Await.until(what, DEADLINE, condition);
    }

    private PortStatus port(int id) {
        return device.dataPlane().ports().stream().filter(s -> s.id() == id).findFirst().orElseThrow();
    }

    private static SocketChannel connect(Path socket) throws IOException {
        SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
        c.connect(UnixDomainSocketAddress.of(socket));
        return c;
    }

    /** The guest writes one buffer on queue {@code txq} and waits until the device completed it. */
    private void guestWrites(int txq, byte[] data) {
        int before = rings[txq].usedIdx();
        rings[txq].addOutBuffer(data);
        EventFd.signal(kicks[txq].fd());
        await("the guest's buffer completed", () -> rings[txq].usedIdx() == before + 1);
        while (rings[txq].pollUsed() != null) {
            // the descriptor is the fake guest's again
        }
    }

    private static byte[] line(int seq) {
        return String.format("seq %06d\n", seq).getBytes(StandardCharsets.US_ASCII);
    }

    @Test
    void aGenericPortLogsWhatTheHostTookOnceAlsoWhenAChainIsTakenInPiecesAcrossARingRestart() throws IOException {
        Path socket = dir.resolve("one.sock");
        Path log = dir.resolve("one.log");
        boot(PortSpecParser.parse("nr=1,name=one,socket=" + socket + ",log=" + log));
        guestSays(1, ControlMessage.PORT_OPEN, 1);
        int tx1 = new QueueMap(MAX_PORTS).transmitQueue(1);
        byte[] data = new byte[1 << 20]; // far more than the socket buffers hold: taken in many writes
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 31 + (i >>> 8));
        }
        try (SocketChannel host = connect(socket)) {
            await("the client connected", () -> port(1).hostConnected());
            rings[tx1].addOutBuffer(data);
            EventFd.signal(kicks[tx1].fd());
            await("the chain partly written and held",
                    () -> port(1).holdingGuestData() && port(1).counters().get(PortCounters.BYTES_TO_HOST) > 0);
            int next = device.stopQueue(tx1);
            start(tx1, next);
            EventFd.signal(kicks[tx1].fd());
            assertArrayEquals(data, GuestRings.readExactly(host, data.length));
            await("the chain completed", () -> rings[tx1].usedIdx() == 1);
        }
        await("the log holds what the host took", () -> size(log) >= data.length);
        LockSupport.parkNanos(100_000_000L); // bytes logged twice would have arrived by now
        assertArrayEquals(data, Files.readAllBytes(log), "each byte once, in order");
        assertEquals(0, port(1).counters().get(PortCounters.LOG_DROPPED_BYTES));
    }

    @Test
    void aLoggedPortWithManyChainsWaitingLogsEachByteTheHostTookOnceInOrder() throws IOException {
        // Without a log the chains would be gathered into one writev; a logged port copies what
        // the host took of each chain, so it writes them one by one and the log matches exactly.
        Path socket = dir.resolve("many.sock");
        Path log = dir.resolve("many.log");
        boot(PortSpecParser.parse("nr=1,name=many,socket=" + socket + ",log=" + log));
        guestSays(1, ControlMessage.PORT_OPEN, 1);
        int tx1 = new QueueMap(MAX_PORTS).transmitQueue(1);
        java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
        int chains = 48;
        try (SocketChannel host = connect(socket)) {
            await("the client connected", () -> port(1).hostConnected());
            for (int i = 0; i < chains; i++) { // 48 x 16 KiB: more than the socket holds at once
                byte[] d = new byte[16 * 1024 + i];
                for (int j = 0; j < d.length; j++) {
                    d[j] = (byte) (j * 13 + i);
                }
                all.writeBytes(d);
                rings[tx1].addOutBuffer(d);
            }
            EventFd.signal(kicks[tx1].fd());
            byte[] expected = all.toByteArray();
            assertArrayEquals(expected, GuestRings.readExactly(host, expected.length));
            await("every chain completed", () -> port(1).counters().get(PortCounters.CHAINS_TO_HOST) == chains);
            await("the log holds what the host took", () -> size(log) >= expected.length);
            LockSupport.parkNanos(100_000_000L); // bytes logged twice would have arrived by now
            assertArrayEquals(expected, Files.readAllBytes(log), "each byte once, in order");
        }
    }

    private static long size(Path p) {
        try {
            return Files.exists(p) ? Files.size(p) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    @Test
    void aLateClientOfAConsoleGetsExactlyTheReplayRingThenLiveOutput() throws IOException {
        Path socket = dir.resolve("con.sock");
        int replay = 1000;
        boot(PortSpecParser.parse("nr=0,console,socket=" + socket + ",replay=" + replay));
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        int seq = 0;
        for (; seq < 300; seq++) { // 3,300 bytes with nobody connected: they wait in the backlog
            guestWrites(1, line(seq));
            all.writeBytes(line(seq));
        }
        int before = all.size();
        try (SocketChannel host = connect(socket)) {
            // The guest goes on writing while the client connects: wherever the seam falls, the
            // client's stream is the ring then what follows it.
            for (; seq < 400; seq++) {
                guestWrites(1, line(seq));
                all.writeBytes(line(seq));
            }
            await("the client connected", () -> port(0).hostConnected());
            byte[] full = all.toByteArray();
            int after = full.length - before;
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            host.configureBlocking(false);
            ByteBuffer b = ByteBuffer.allocate(8192);
            // Read until the stream ends with the last line written.
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            while (!endsWith(got.toByteArray(), line(seq - 1)) && System.nanoTime() < deadline) {
                b.clear();
                if (host.read(b) > 0) {
                    got.write(b.array(), 0, b.position());
                } else {
                    LockSupport.parkNanos(1_000_000);
                }
            }
            byte[] g = got.toByteArray();
            assertTrue(g.length >= replay, "at least the replay ring: " + g.length);
            assertTrue(g.length <= replay + after, "the replay, not the whole backlog: " + g.length);
            assertArrayEquals(Arrays.copyOfRange(full, full.length - g.length, full.length), g,
                    "the client's stream is the output's tail: no gap, no byte twice at the seam");
        }
    }

    private static boolean endsWith(byte[] a, byte[] suffix) {
        return a.length >= suffix.length
                && Arrays.equals(a, a.length - suffix.length, a.length, suffix, 0, suffix.length);
    }

    @Test
    void aFollowerGetsTheRingThenLiveOutputWithoutAGap() throws IOException {
        boot(PortSpecParser.parse("nr=0,console,null,replay=500"));
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        int seq = 0;
        for (; seq < 100; seq++) {
            guestWrites(1, line(seq));
            all.writeBytes(line(seq));
        }
        LogFollower f = new LogFollower(64 * 1024);
        byte[] ring = device.dataPlane().followLog(0, f);
        assertEquals(500, ring.length);
        byte[] upToNow = all.toByteArray();
        assertArrayEquals(Arrays.copyOfRange(upToNow, upToNow.length - 500, upToNow.length), ring);
        for (; seq < 200; seq++) {
            guestWrites(1, line(seq));
            all.writeBytes(line(seq));
        }
        ByteArrayOutputStream live = new ByteArrayOutputStream();
        byte[] chunk = new byte[4096];
        while (live.size() < all.size() - upToNow.length) {
            int n = f.read(chunk, 1_000_000_000L);
            assertTrue(n >= 0, "the follower is fed");
            live.write(chunk, 0, n);
        }
        byte[] full = all.toByteArray();
        assertArrayEquals(Arrays.copyOfRange(full, upToNow.length, full.length), live.toByteArray());
        f.cancel();
    }

    @Test
    void aFollowerThatDoesNotReadIsDroppedAndCountedWhileTheGuestGoesOn() throws IOException {
        boot(PortSpecParser.parse("nr=0,console,null"));
        LogFollower f = new LogFollower(1024);
        device.dataPlane().followLog(0, f);
        for (int seq = 0; seq < 200; seq++) { // 2,200 bytes into a 1 KiB follower that nobody reads
            guestWrites(1, line(seq));
        }
        assertTrue(f.overflowed());
        assertEquals(1, port(0).counters().get(PortCounters.LOG_FOLLOWERS_DROPPED));
        byte[] chunk = new byte[4096];
        int n = f.read(chunk, 1);
        assertTrue(n > 0 && n <= 1024, "what it held before it overflowed: " + n);
        assertEquals(-1, f.read(chunk, 1), "then the end: a follower that lost bytes is not fed again");
    }

    @Test
    void aPortWhoseLogCannotBeOpenedIsRefusedWithNothingStarted() throws IOException {
        boot(PortSpecParser.parse("nr=0,console,null"));
        Path socket = dir.resolve("never.sock");
        PortConfig bad = PortSpecParser.parse("nr=1,name=bad,socket=" + socket + ",log=" + dir.resolve("no/dir/x.log"));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> device.dataPlane().addPort(bad));
        PortRequestException refusal = (PortRequestException) e.getCause();
        assertEquals(PortRequestException.Reason.ENDPOINT_FAILED, refusal.reason());
        assertTrue(refusal.getMessage().contains("log=" + dir.resolve("no/dir/x.log")), refusal.getMessage());
        assertFalse(Files.exists(socket), "the endpoint was never opened");
        assertTrue(device.dataPlane().ports().stream().noneMatch(p -> p.id() == 1));
    }

    @Test
    void ctlLogPrintsTheTailAndFollowStreamsLiveOutputOverTheManagementSocket() throws Exception {
        boot(PortSpecParser.parse("nr=0,console,null"));
        for (int seq = 0; seq < 10; seq++) {
            guestWrites(1, line(seq));
        }
        Path api = dir.resolve("api.sock");
        try (io.vportd.console.api.ManagementServer server = io.vportd.console.api.ManagementServer.start(api,
                new io.vportd.console.api.DataPlanePorts(device.dataPlane()))) {
            java.io.StringWriter out = new java.io.StringWriter();
            java.io.StringWriter err = new java.io.StringWriter();
            int code = io.vportd.console.ctl.CtlCommand.run(new String[] {"--api-socket", api.toString(), "log", "0",
                    "--tail", "2"}, new java.io.PrintWriter(out), new java.io.PrintWriter(err));
            assertEquals(0, code, err.toString());
            assertEquals("seq 000008\nseq 000009\n", out.toString());

            // The keys through add-port, the settings in list-ports.
            Path added = dir.resolve("added.log");
            assertEquals(0, io.vportd.console.ctl.CtlCommand.run(new String[] {"--api-socket", api.toString(), "add-port",
                    "nr=1,name=added,null,log=" + added + ",log-max=64K,log-keep=2,log-timestamps,replay=2K"},
                    new java.io.PrintWriter(new java.io.StringWriter()), new java.io.PrintWriter(err)), err.toString());
            assertTrue(Files.exists(added), "the log is opened when the port is added");
            java.io.StringWriter list = new java.io.StringWriter();
            assertEquals(0, io.vportd.console.ctl.CtlCommand.run(new String[] {"--api-socket", api.toString(), "--json",
                    "list-ports"}, new java.io.PrintWriter(list), new java.io.PrintWriter(err)));
            assertTrue(list.toString().contains("\"log\" : \"log=" + added + ",log-max=65536,log-keep=2,log-timestamps,replay=2048\""),
                    list.toString());
            assertTrue(list.toString().contains("\"log\" : \"replay=65536\""), "the console's default: " + list);
            java.io.StringWriter refused = new java.io.StringWriter();
            assertEquals(1, io.vportd.console.ctl.CtlCommand.run(new String[] {"--api-socket", api.toString(), "add-port",
                    "nr=1,null,replay=4M"}, new java.io.PrintWriter(new java.io.StringWriter()), new java.io.PrintWriter(refused)));
            assertTrue(refused.toString().contains("bad-spec") && refused.toString().contains("replay must be at most"),
                    refused.toString());

            try (io.vportd.console.ctl.ApiClient c = io.vportd.console.ctl.ApiClient.connect(api)) {
                com.fasterxml.jackson.databind.node.ObjectNode r = c.request("log");
                r.put("nr", 0);
                r.put("tail", 1);
                r.put("follow", true);
                com.fasterxml.jackson.databind.JsonNode resp = c.call(r);
                assertTrue(resp.path("ok").asBoolean(), resp.toString());
                assertEquals("seq 000009\n", new String(java.util.Base64.getDecoder().decode(resp.path("data").asText()),
                        StandardCharsets.US_ASCII));
                for (int seq = 10; seq < 20; seq++) {
                    guestWrites(1, line(seq));
                }
                StringBuilder live = new StringBuilder();
                while (live.length() < 10 * line(0).length) {
                    com.fasterxml.jackson.databind.JsonNode e = c.nextEvent();
                    assertEquals("log", e.path("event").asText(), e.toString());
                    live.append(new String(java.util.Base64.getDecoder().decode(e.path("data").path("data").asText()),
                            StandardCharsets.US_ASCII));
                }
                StringBuilder expected = new StringBuilder();
                for (int seq = 10; seq < 20; seq++) {
                    expected.append(new String(line(seq), StandardCharsets.US_ASCII));
                }
                assertEquals(expected.toString(), live.toString());
            }
        }
    }

    @Test
    void journalEntriesCarryTheDeviceAndPortAndAnAbsentJournalStopsStartUp() throws IOException {
        Path journal = dir.resolve("journal.sock");
        IOException absent = assertThrows(IOException.class, () -> new ConsoleDevice(MAX_PORTS,
                List.of(PortSpecParser.parse("nr=1,name=agent,null,log=journal")),
                new PortLogContext("/run/vm9/vportd.sock", journal)));
        assertTrue(absent.getMessage().contains("log=journal: the journal socket " + journal + " is absent"),
                absent.getMessage());

        try (Fd listener = io.vportd.sys.UnixSockets.bindDatagram(journal);
             java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            boot(PortSpecParser.parse("nr=1,name=agent,null,log=journal"),
                    new PortLogContext("/run/vm9/vportd.sock", journal));
            int tx1 = new QueueMap(MAX_PORTS).transmitQueue(1);
            guestSays(1, ControlMessage.PORT_OPEN, 1);
            guestWrites(tx1, "first line\nsecond".getBytes(StandardCharsets.US_ASCII));
            guestWrites(tx1, " line\n".getBytes(StandardCharsets.US_ASCII));
            java.lang.foreign.MemorySegment buf = arena.allocate(65536);
            for (String expected : List.of("first line", "second line")) {
                long n = io.vportd.sys.Io.read(listener.fd(), buf.address(), buf.byteSize());
                String entry = new String(buf.asSlice(0, n).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE),
                        StandardCharsets.UTF_8);
                assertEquals(List.of("MESSAGE=" + expected, "PRIORITY=6", "SYSLOG_IDENTIFIER=vportd",
                        "VPORTD_DEVICE=/run/vm9/vportd.sock", "VPORTD_PORT=1", "VPORTD_PORT_NAME=agent"),
                        List.of(entry.split("\n")), entry);
            }
        }
    }
}
