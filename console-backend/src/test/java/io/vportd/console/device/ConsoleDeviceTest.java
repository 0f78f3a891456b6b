package io.vportd.console.device;

import java.time.Duration;
import io.vportd.testsupport.Await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.control.ControlMessage;
import io.vportd.console.control.PortConfig;
import io.vportd.console.control.ResizeOrder;
import io.vportd.console.endpoint.Endpoint;
import io.vportd.console.endpoint.StdioEndpoint;
import io.vportd.sys.Fd;
import io.vportd.sys.EventFd;
import io.vportd.sys.Io;
import io.vportd.sys.Terminal;
import io.vportd.vring.testing.GuestRam;
import io.vportd.vring.testing.RingDriver;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole console device in process, driven by a simulated guest that builds its rings the way
 * the Linux driver does — and then misbehaves. Ports use file endpoints so every byte the device
 * hands the host can be checked.
 */
class ConsoleDeviceTest {

    static final int MAX_PORTS = 4;
    static final int RING = 64;
    static final long DEADLINE_NANOS = 10_000_000_000L;
    static final Duration DEADLINE = Duration.ofNanos(DEADLINE_NANOS);

    @TempDir
    Path dir;

    private ConsoleDevice device;
    private GuestRam ram;
    private final RingDriver[] rings = new RingDriver[2 * (MAX_PORTS + 1)];
    private final Fd[] kicks = new Fd[rings.length];
    private final Fd[] calls = new Fd[rings.length];

    @BeforeEach
    void boot() throws IOException {
        boot(List.of(
                new PortConfig(0, null, true, 0, 0, ResizeOrder.COLS_ROWS, new EndpointSpec.FileOut(dir.resolve("console.out"))),
                new PortConfig(1, "org.test.one", false, 0, 0, null, new EndpointSpec.FileOut(dir.resolve("one.out"))),
                new PortConfig(2, "org.test.two", false, 0, 0, null, new EndpointSpec.FileOut(dir.resolve("two.out")))),
                ConsoleDevice::endpointFor);
    }

    private void boot(List<PortConfig> ports, Function<PortConfig, Endpoint> endpoints) throws IOException {
        if (device != null) {
            shutdown();
        }
        device = new ConsoleDevice(MAX_PORTS, ports, endpoints);
        ram = new GuestRam(16L << 20, 1);
        GuestRings.startAll(device, ram, RING, rings, kicks, calls);
        for (int i = 0; i < 16; i++) {
            rings[QueueMap.CONTROL_RX].addInBuffer(4096);
        }
        kick(QueueMap.CONTROL_RX);
    }

    @AfterEach
    void shutdown() {
        if (device == null) {
            return;
        }
        device.close();
        device = null;
        for (int q = 0; q < rings.length; q++) {
            rings[q].close();
            kicks[q].closeQuietly();
            calls[q].closeQuietly();
        }
        ram.close();
        received.clear();
    }

    private void kick(int q) {
        EventFd.signal(kicks[q].fd());
    }

    private void sendControl(int id, int event, int value) {
        byte[] b = new byte[8];
        ControlMessage.encodeHeader(b, 0, id, event, value);
        rings[QueueMap.CONTROL_TX].addOutBuffer(b);
        kick(QueueMap.CONTROL_TX);
    }

    private final List<ControlMessage> received = new ArrayList<>();

    /** Collects control messages from the device until one matches, refilling the buffers it used. */
    private ControlMessage awaitControl(int id, int event) {
        long deadline = System.nanoTime() + DEADLINE_NANOS;
        while (true) {
            RingDriver.Used u;
            while ((u = rings[QueueMap.CONTROL_RX].pollUsed()) != null) {
                received.add(ControlMessage.decode(u.data(), 0, u.length()));
                rings[QueueMap.CONTROL_RX].addInBuffer(4096);
                kick(QueueMap.CONTROL_RX);
            }
            for (ControlMessage m : received) {
                if (m != null && m.id() == id && m.event() == event) {
                    received.remove(m);
                    return m;
                }
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no control message " + ControlMessage.eventName(event) + " for port " + id
                        + "; got " + received);
            }
            LockSupport.parkNanos(200_000); // poll interval while the device thread works
        }
    }

    private String fileText(String name) {
        try {
            Path p = dir.resolve(name);
            return Files.exists(p) ? Files.readString(p, StandardCharsets.UTF_8) : "";
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private void bringUp() {
        sendControl(0xFFFFFFFF, ControlMessage.DEVICE_READY, 1);
        for (int id = 0; id <= 2; id++) {
            awaitControl(id, ControlMessage.PORT_ADD);
            sendControl(id, ControlMessage.PORT_READY, 1);
        }
        awaitControl(0, ControlMessage.CONSOLE_PORT);
        awaitControl(1, ControlMessage.PORT_NAME);
        awaitControl(2, ControlMessage.PORT_NAME);
        // file endpoints are "connected" from the start
        awaitControl(1, ControlMessage.PORT_OPEN);
        awaitControl(2, ControlMessage.PORT_OPEN);
    }

    @Test
    void linuxLikeBringUpAnnouncesPortsAndCarriesData() {
        bringUp();
        int tx1 = new QueueMap(MAX_PORTS).transmitQueue(1);
        rings[tx1].addOutBuffer("hello host".getBytes(StandardCharsets.US_ASCII));
        kick(tx1);
        Await.until("port 1 output in its file", DEADLINE, () -> fileText("one.out").equals("hello host"));
        Await.until("the guest's buffer back", DEADLINE, () -> rings[tx1].pollUsed() != null);
    }

    @Test
    void queueCountersSurviveARingRestart() {
        bringUp();
        int tx1 = new QueueMap(MAX_PORTS).transmitQueue(1);
        io.vportd.vring.QueueStats stats = device.dataPlane().queueStats(tx1);
        rings[tx1].addOutBuffer("abc".getBytes(StandardCharsets.US_ASCII));
        kick(tx1);
        Await.until("port 1 output in its file", DEADLINE, () -> fileText("one.out").equals("abc"));
        Await.until("the chain counted", DEADLINE, () -> stats.chains() == 1 && stats.chainBytes() == 3);
        int next = device.stopQueue(tx1);
        GuestRings.start(device, ram, RING, rings, kicks, calls, tx1, next);
        assertSame(stats, device.dataPlane().queueStats(tx1), "one counter set per queue index for the device's life");
        assertEquals(1, stats.chains(), "the restart kept the count");
        rings[tx1].addOutBuffer("def".getBytes(StandardCharsets.US_ASCII));
        kick(tx1);
        Await.until("port 1 output after the restart", DEADLINE, () -> fileText("one.out").equals("abcdef"));
        Await.until("both chains counted", DEADLINE, () -> stats.chains() == 2 && stats.chainBytes() == 6);
        assertTrue(device.dataPlane().metrics().families().stream()
                .filter(f -> f.name().equals("vportd_queue_chains_total"))
                .flatMap(f -> f.samples().stream())
                .anyMatch(x -> x.labels().equals(List.of("queue", Integer.toString(tx1), "port", "1", "direction", "tx"))
                        && x.value() == 2), "the metrics see the same counters");
    }

    @Test
    void hostileChainsAndMessagesHurtOnlyThemselves() {
        bringUp();
        QueueMap map = new QueueMap(MAX_PORTS);
        int tx1 = map.transmitQueue(1);
        int tx2 = map.transmitQueue(2);

        // Control queue: garbage, a too-short message, an unknown event, a buffer outside memory.
        rings[QueueMap.CONTROL_TX].addOutBuffer(new byte[] {1, 2, 3});
        sendControl(1, 99, 1);
        sendControl(MAX_PORTS + 7, ControlMessage.PORT_READY, 1);
        int bad = rings[QueueMap.CONTROL_TX].takeDescriptor();
        rings[QueueMap.CONTROL_TX].pokeDescriptor(bad, ram.memory().region(0).guestPhysAddr() + (64L << 20), 8, 0, 0);
        rings[QueueMap.CONTROL_TX].publishHead(bad);
        kick(QueueMap.CONTROL_TX);

        // Port 2: a descriptor chain that loops on itself, and a device-writable buffer in a transmit queue.
        int loop = rings[tx2].takeDescriptor();
        rings[tx2].pokeDescriptor(loop, ram.memory().region(0).guestPhysAddr() + (8L << 20), 16, RingDriver.F_NEXT, loop);
        rings[tx2].publishHead(loop);
        int wrongWay = rings[tx2].takeDescriptor();
        rings[tx2].pokeDescriptor(wrongWay, ram.memory().region(0).guestPhysAddr() + (9L << 20), 16, RingDriver.F_WRITE, 0);
        rings[tx2].publishHead(wrongWay);
        kick(tx2);

        // Every bad chain comes back completed, with length 0.
        Await.until("the control queue to complete all four bad buffers", DEADLINE, () -> rings[QueueMap.CONTROL_TX].usedIdx() >= 4 + 4);
        Await.until("port 2's bad chains completed", DEADLINE, () -> rings[tx2].usedIdx() == 2);

        // ...and the device goes on: port 1 and port 2 still carry data, the control queue still works.
        rings[tx1].addOutBuffer("still-one".getBytes(StandardCharsets.US_ASCII));
        kick(tx1);
        rings[tx2].addOutBuffer("still-two".getBytes(StandardCharsets.US_ASCII));
        kick(tx2);
        Await.until("port 1 data after the abuse", DEADLINE, () -> fileText("one.out").equals("still-one"));
        Await.until("port 2 data after its own bad chains", DEADLINE, () -> fileText("two.out").equals("still-two"));
        sendControl(1, ControlMessage.PORT_OPEN, 1);
        sendControl(1, ControlMessage.PORT_OPEN, 0);
        Await.until("the later control messages consumed", DEADLINE, () -> rings[QueueMap.CONTROL_TX].usedIdx() >= 4 + 6);
        long badTotal = 0;
        for (PortStatus s : device.dataPlane().ports()) {
            assertTrue(s.counters().get(PortCounters.BYTES_TO_HOST) >= 0);
        }
        badTotal = device.dataPlane().queueStats(tx2).badChains() + device.dataPlane().queueStats(QueueMap.CONTROL_TX).badChains();
        assertEquals(3, badTotal, "each bad chain is counted once");
    }

    @Test
    void emergencyWriteGoesToTheFirstConsole() {
        byte[] config = new byte[ConfigSpace.SIZE];
        device.getConfig(0, config);
        assertEquals(MAX_PORTS, config[4], "max_nr_ports in the config space");
        config[8] = 'Z';
        device.setConfig(0, config); // QEMU forwards a guest config write as the whole 12 bytes
        config[8] = '!';
        device.setConfig(8, new byte[] {config[8], 0, 0, 0});
        Await.until("the emergency characters in the console's output", DEADLINE, () -> fileText("console.out").equals("Z!"));
    }

    /** A console on a terminal follows the terminal's window size, as a stdio console does. */
    @Test
    void consoleOnATerminalFollowsItsWindowSize() throws IOException {
        Terminal.Pty pty = Terminal.openPty();
        try (Fd master = pty.master();
             Fd slave = Io.open(Path.of(pty.slavePath()), Io.O_RDWR | Io.O_NOCTTY, 0)) {
            Terminal.setWindowSize(master.fd(), 100, 30);
            boot(List.of(new PortConfig(0, null, true, 0, 0, ResizeOrder.COLS_ROWS, new EndpointSpec.Stdio())),
                    c -> new StdioEndpoint("port 0", slave.fd(), slave.fd()));
            sendControl(0xFFFFFFFF, ControlMessage.DEVICE_READY, 1);
            awaitControl(0, ControlMessage.PORT_ADD);
            sendControl(0, ControlMessage.PORT_READY, 1);
            ControlMessage first = awaitControl(0, ControlMessage.RESIZE);
            assertEquals(100, first.resizeCols(ResizeOrder.COLS_ROWS));
            assertEquals(30, first.resizeRows(ResizeOrder.COLS_ROWS));
            Terminal.setWindowSize(master.fd(), 132, 43); // the user resizes the terminal window
            ControlMessage second = awaitControl(0, ControlMessage.RESIZE);
            assertEquals(132, second.resizeCols(ResizeOrder.COLS_ROWS));
            assertEquals(43, second.resizeRows(ResizeOrder.COLS_ROWS));
            shutdown(); // before the PTY closes
        }
    }
}
