package io.vportd.console;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.api.DeviceDirectory;
import io.vportd.console.cli.DeviceConfig;
import io.vportd.console.cli.PortSpecParser;
import io.vportd.console.control.PortConfig;
import io.vportd.console.device.PortStatus;
import io.vportd.console.handover.DevicesHandover;
import io.vportd.console.handover.RestoredDevices;
import io.vportd.console.handover.TakeOver;
import io.vportd.console.handover.Takers;
import io.vportd.testsupport.Await;
import io.vportd.vhost.testing.TestFrontend;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A live hand-over of a daemon of several devices ({@link DevicesHandover}, issue 13), in one JVM:
 * two devices, each with a frontend driving real rings in its memfd over the vhost-user socket and
 * a connected host client, go to a second {@link Devices} at once. Bytes go on exactly once both
 * ways on both devices, including a receive buffer the guest posted before and a host write made
 * during the pause; no client sees an end of file; a port and a device added at run time come
 * along. A refused record version, a new process that dies after the state, and a device that
 * cannot be handed over each leave the running daemon serving both devices.
 */
@Timeout(60)
class DevicesHandoverTest {

    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final int MAX_PORTS = 3;
    private static final int QUEUES = 2 * (MAX_PORTS + 1);
    /** The control transmit queue (guest to device). */
    private static final int CONTROL_TX = 3;
    /** Port 1's queues: the guest receives on 4 and transmits on 5. */
    private static final int RX = 4;
    private static final int TX = 5;

    @TempDir
    Path dir;

    private Devices running;
    private Devices taker;
    private DevicesHandover handover;
    private final AtomicBoolean exited = new AtomicBoolean();
    private final List<AutoCloseable> closers = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        for (AutoCloseable c : closers.reversed()) {
            c.close();
        }
        if (taker != null) {
            taker.close();
        }
        if (handover != null) {
            handover.close();
        }
        if (running != null) {
            running.close(); // last: after a hand-over a real daemon halts instead, leaving its descriptors to the taker
        }
    }

    private DeviceConfig config(String id, String... ports) {
        List<PortConfig> parsed = new ArrayList<>();
        for (String p : ports) {
            parsed.add(PortSpecParser.parse(p));
        }
        return new DeviceConfig(id, dir.resolve(id + ".sock"), MAX_PORTS, parsed, false);
    }

    private Path handoverSocket() {
        return dir.resolve("api.sock.handover");
    }

    /** Device a from the start, device b added at run time (as add-device does), and the hand-over socket. */
    private void startRunning(String bSecondPort) throws IOException {
        running = new Devices(null, null, dir.resolve("no-journal").toString(), 1);
        running.start(config("a", "nr=0,console,cols=100,rows=40,null",
                "nr=1,name=agent,socket=" + dir.resolve("a-agent.sock")));
        running.addDevice(config("b", "nr=0,console,cols=132,rows=43,null",
                "nr=1,name=agent,socket=" + dir.resolve("b-agent.sock"), bSecondPort));
        handover = DevicesHandover.start(new DevicesHandover.Context(handoverSocket(), null, null, running,
                () -> exited.set(true)));
    }

    /** A guest's port 1 as its frontend drives it: one receive and one transmit ring in the frontend's memfd. */
    private final class Guest {
        final String id;
        final TestFrontend fe;
        final Ring rx;
        final Ring tx;
        final SocketChannel client;

        Guest(String id) throws IOException {
            this.id = id;
            fe = TestFrontend.connect(dir.resolve(id + ".sock"), QUEUES, 12);
            closers.add(fe);
            rx = new Ring(fe, RX);
            tx = new Ring(fe, TX);
            Ring control = new Ring(fe, CONTROL_TX);
            control.post(controlMessage(0, 0, 1), false); // DEVICE_READY
            control.post(controlMessage(1, 6, 1), false); // PORT_OPEN 1: the guest reads port 1
            client = SocketChannel.open(StandardProtocolFamily.UNIX);
            client.connect(UnixDomainSocketAddress.of(dir.resolve(id + "-agent.sock")));
            closers.add(client);
        }

        /** The guest writes {@code text}; the host client reads exactly it. */
        void guestToHost(String text) throws IOException {
            tx.post(text.getBytes(StandardCharsets.UTF_8), false);
            assertEquals(text, read(client, text.length()), id + ": the host client reads what the guest wrote");
            Await.until(id + ": the transmit buffer to come back", WAIT, () -> tx.usedIdx() == tx.posted());
        }

        /** The host client writes {@code text}; the guest receives exactly it in its next receive buffer. */
        void hostToGuest(String text) throws IOException {
            write(text);
            assertEquals(text, rx.nextUsed(), id + ": the guest receives what the host client wrote");
        }

        void write(String text) throws IOException {
            ByteBuffer b = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
            while (b.hasRemaining()) {
                client.write(b);
            }
        }

        /** Nothing more on the host side, and no end of file there. */
        void assertClientQuietAndOpen(String after) throws IOException {
            client.configureBlocking(false);
            try {
                assertEquals(0, client.read(ByteBuffer.allocate(64)), id + ": the host client has nothing more and no "
                        + "end of file after " + after);
                assertTrue(client.isConnected());
            } finally {
                client.configureBlocking(true);
            }
        }
    }

    /** A split ring of 64 in the frontend's guest memory, one 4 KiB buffer per slot, one descriptor per chain. */
    private static final class Ring {
        static final int SIZE = 64;
        final TestFrontend fe;
        final MemorySegment ram;
        final int q;
        final long desc;
        final long avail;
        final long used;
        final long data;
        int next;
        int seen;

        Ring(TestFrontend fe, int q) throws IOException {
            this.fe = fe;
            this.ram = fe.guestRam();
            this.q = q;
            this.desc = 0x100000L + q * 0x10000L;
            this.avail = desc + 0x1000;
            this.used = desc + 0x2000;
            this.data = 0x800000L + q * 0x40000L;
            fe.startQueue(q, desc, avail, used, SIZE);
        }

        void post(byte[] out, boolean deviceWrites) {
            int slot = next % SIZE;
            long buf = data + slot * 0x1000L;
            int len = deviceWrites ? 0x1000 : out.length;
            if (!deviceWrites) {
                MemorySegment.copy(out, 0, ram, ValueLayout.JAVA_BYTE, buf, len);
            }
            ram.set(ValueLayout.JAVA_LONG_UNALIGNED, desc + 16L * slot, buf);
            ram.set(ValueLayout.JAVA_INT_UNALIGNED, desc + 16L * slot + 8, len);
            ram.set(ValueLayout.JAVA_SHORT_UNALIGNED, desc + 16L * slot + 12, (short) (deviceWrites ? 2 : 0));
            ram.set(ValueLayout.JAVA_SHORT_UNALIGNED, desc + 16L * slot + 14, (short) 0);
            ram.set(ValueLayout.JAVA_SHORT_UNALIGNED, avail + 4 + 2L * slot, (short) slot);
            VarHandle.fullFence();
            next++;
            ram.set(ValueLayout.JAVA_SHORT_UNALIGNED, avail + 2, (short) next);
            VarHandle.fullFence();
            fe.kick(q);
        }

        int posted() {
            return next;
        }

        int usedIdx() {
            VarHandle.fullFence();
            return Short.toUnsignedInt(ram.get(ValueLayout.JAVA_SHORT_UNALIGNED, used + 2));
        }

        /** Waits for the next used entry and returns what the device wrote into its buffer. */
        String nextUsed() {
            Await.until("ring " + q + " to use buffer " + seen, WAIT, () -> usedIdx() > seen);
            long elem = used + 4 + 8L * (seen % SIZE);
            int head = ram.get(ValueLayout.JAVA_INT_UNALIGNED, elem);
            int len = ram.get(ValueLayout.JAVA_INT_UNALIGNED, elem + 4);
            seen++;
            byte[] b = new byte[len];
            MemorySegment.copy(ram, ValueLayout.JAVA_BYTE, data + head * 0x1000L, b, 0, len);
            return new String(b, StandardCharsets.UTF_8);
        }
    }

    /** A virtio-console control message: id, event, value, little-endian. */
    private static byte[] controlMessage(int id, int event, int value) {
        return ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(id).putShort((short) event)
                .putShort((short) value).array();
    }

    private static String read(SocketChannel c, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (c.read(b) < 0) {
                throw new IOException("end of file");
            }
        }
        return new String(b.array(), StandardCharsets.UTF_8);
    }

    private void awaitClients(Devices d) {
        for (String id : List.of("a", "b")) {
            Await.until("device " + id + "'s host client connected", WAIT,
                    () -> d.device(id).listPorts().stream().anyMatch(p -> p.id() == 1 && p.hostConnected() && p.guestOpen()));
        }
    }

    @Test
    void bothDevicesGoAtOnceAndKeepTheirClientsAndTheirBytesExactlyOnce() throws Exception {
        startRunning("nr=2,name=extra,null");
        running.device("a").addPort(PortSpecParser.parse("nr=2,name=added-at-run-time,null"));
        Guest a = new Guest("a");
        Guest b = new Guest("b");
        awaitClients(running);
        for (Guest g : List.of(a, b)) {
            g.guestToHost(g.id + ":before;");
            g.rx.post(null, true);
            g.hostToGuest(g.id + ":to-guest-before;");
            g.rx.post(null, true); // posted now, filled after the hand-over (the device holds it across)
        }

        taker = new Devices(null, null, dir.resolve("no-journal").toString(), 2);
        RestoredDevices r;
        try (TakeOver link = TakeOver.connectTo(handoverSocket())) {
            r = taker.takeOver(link, handoverSocket());
            // The running daemon is frozen now: host writes wait in the sockets, none is lost.
            a.write("a:during;");
            b.write("b:during;");
            link.ready();
        }
        Await.until("the running daemon to let go", WAIT, exited::get);
        taker.resumeTakenOver(r);

        assertEquals(List.of("a", "b"), taker.listDevices().stream().map(DeviceDirectory.DeviceInfo::id).toList());
        assertEquals(List.of(0, 1, 2), taker.device("a").listPorts().stream().map(PortStatus::id).toList(),
                "device a's port added at run time came along");
        assertEquals("added-at-run-time", taker.device("a").listPorts().get(2).name());
        assertEquals(3, taker.device("b").listPorts().size(), "device b, added at run time, came with its ports");
        for (Guest g : List.of(a, b)) {
            assertEquals(g.id + ":during;", g.rx.nextUsed(), g.id + ": the write made during the pause arrives once, "
                    + "in the buffer posted before the hand-over");
            g.guestToHost(g.id + ":after;");
            g.rx.post(null, true);
            g.hostToGuest(g.id + ":to-guest-after;");
            g.assertClientQuietAndOpen("the hand-over");
            assertEquals(0, g.fe.stopQueue(0), g.id + ": the frontend is answered by the new process");
            java.nio.ByteBuffer size = ByteBuffer.wrap(g.fe.getConfig(0, 4)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            assertEquals(g.id.equals("a") ? List.of(100, 40) : List.of(132, 43),
                    List.of(size.getShort() & 0xffff, size.getShort() & 0xffff), g.id + ": the console keeps its size");
        }
        assertTrue(r.devices().stream().allMatch(d -> d.vhost().sessionsStarted() > 0), "both sessions were replayed");
    }

    @Test
    void aLaterRecordVersionIsRefusedAndTheRunningDaemonServesBothDevices() throws Exception {
        startRunning("nr=2,name=extra,null");
        Guest a = new Guest("a");
        Guest b = new Guest("b");
        awaitClients(running);
        a.guestToHost("a:1;");
        b.guestToHost("b:1;");

        String why = Takers.refuseALaterVersion(handoverSocket());
        assertTrue(why.contains("version 3 is not supported"), why);
        Await.until("the running daemon to resume", WAIT, () -> handover.failedHandovers() == 1);
        String answer = Takers.askForVersion(handoverSocket(), 1);
        assertTrue(answer.contains("refused") && answer.contains("--take-over --config"), answer);
        assertEquals(2, handover.failedHandovers());

        assertServesBoth(a, b, "a refused version");
    }

    @Test
    void aNewProcessDyingAfterTheStateLeavesTheRunningDaemonServingBothDevices() throws Exception {
        startRunning("nr=2,name=extra,null");
        Guest a = new Guest("a");
        Guest b = new Guest("b");
        awaitClients(running);
        a.rx.post(null, true);
        b.rx.post(null, true);

        Takers.dieAfterTheState(handoverSocket());
        Await.until("the running daemon to resume", WAIT, () -> handover.failedHandovers() == 1);

        assertEquals("a:held;", withWrite(a, "a:held;"), "a's receive buffer posted before the hand-over is still held");
        assertEquals("b:held;", withWrite(b, "b:held;"));
        assertServesBoth(a, b, "a new process that died");
    }

    @Test
    void aDeviceThatCannotBeHandedOverRefusesTheWholeHandOverNamingIt() throws Exception {
        startRunning("nr=2,name=terminal,stdio");
        Guest a = new Guest("a");
        Guest b = new Guest("b");
        awaitClients(running);

        Devices other = new Devices(null, null, dir.resolve("no-journal").toString(), 1);
        try (TakeOver link = TakeOver.connectTo(handoverSocket())) {
            IOException e = assertThrows(IOException.class, () -> other.takeOver(link, handoverSocket()));
            assertTrue(e.getMessage().contains("device b:") && e.getMessage().contains("cannot be handed over"),
                    e.getMessage());
        } finally {
            other.close();
        }
        Await.until("the running daemon to resume", WAIT, () -> handover.failedHandovers() == 1);
        assertServesBoth(a, b, "a refusal");
    }

    @Test
    void noDeviceOrPortIsAddedRemovedOrResizedWhileTheTableIsHeld() throws Exception {
        startRunning("nr=2,name=extra,null");
        running.hold();
        var added = assertThrows(io.vportd.console.api.ApiException.class, () -> running.addDevice(config("c")));
        assertTrue(added.getMessage().contains("hand-over"), added.getMessage());
        assertThrows(io.vportd.console.api.ApiException.class, () -> running.removeDevice("a"));
        var port = assertThrows(io.vportd.console.device.PortRequestException.class,
                () -> running.device("a").addPort(PortSpecParser.parse("nr=2,name=late,null")));
        assertTrue(port.getMessage().contains("hand-over"), port.getMessage());
        for (org.junit.jupiter.api.function.Executable change : List.<org.junit.jupiter.api.function.Executable>of(
                () -> running.device("b").removePort(2), () -> running.device("a").resize(0, 80, 25))) {
            var refused = assertThrows(io.vportd.console.device.PortRequestException.class, change);
            assertTrue(refused.getMessage().contains("hand-over"), refused.getMessage());
        }
        assertEquals(3, running.device("b").listPorts().size(), "listing goes on during a hand-over");
        assertThrows(IOException.class, running::hold, "one hand-over at a time");
        running.release();
        running.addDevice(config("c"));
        running.removeDevice("c");
        assertFalse(Files.exists(dir.resolve("c.sock")));
        running.device("a").addPort(PortSpecParser.parse("nr=2,name=late,null"));
        running.device("b").removePort(2);
        running.device("a").resize(0, 80, 25);
    }

    private static String withWrite(Guest g, String text) throws IOException {
        g.write(text);
        return g.rx.nextUsed();
    }

    private void assertServesBoth(Guest a, Guest b, String after) throws IOException {
        assertFalse(exited.get(), "the running daemon did not exit");
        for (Guest g : List.of(a, b)) {
            g.guestToHost(g.id + ":after;");
            g.rx.post(null, true);
            g.hostToGuest(g.id + ":to-guest-after;");
            g.assertClientQuietAndOpen(after);
            assertEquals(g.id.equals("a") ? 2 : 3, running.device(g.id).listPorts().size(),
                    g.id + " lists its ports after " + after);
        }
        assertArrayEquals(new String[] {"a", "b"},
                running.listDevices().stream().map(DeviceDirectory.DeviceInfo::id).toArray(String[]::new));
    }
}
