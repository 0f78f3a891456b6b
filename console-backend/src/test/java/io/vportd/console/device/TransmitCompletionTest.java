package io.vportd.console.device;

import java.time.Duration;
import io.vportd.testsupport.Await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.control.ControlMessage;
import io.vportd.console.control.PortConfig;
import io.vportd.console.control.ResizeOrder;
import io.vportd.sys.Fd;
import io.vportd.sys.EventFd;
import io.vportd.vring.testing.GuestRam;
import io.vportd.vring.testing.RingDriver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Completions of generic-port transmit chains are published in batches (bench/run measured the
 * guest interrupts they save). Whatever the batching does, every chain the device took must come
 * back to the guest: a lone chain below the batch size, a long burst, and chains still gathering
 * when the ring stops.
 */
class TransmitCompletionTest {

    static final int MAX_PORTS = 2;
    static final int RING = 256;
    static final long DEADLINE_NANOS = 10_000_000_000L;
    static final Duration DEADLINE = Duration.ofNanos(DEADLINE_NANOS);

    @TempDir
    Path dir;

    private ConsoleDevice device;
    private GuestRam ram;
    private final RingDriver[] rings = new RingDriver[2 * (MAX_PORTS + 1)];
    private final Fd[] kicks = new Fd[rings.length];
    private final Fd[] calls = new Fd[rings.length];
    private final int tx1 = new QueueMap(MAX_PORTS).transmitQueue(1);

    @BeforeEach
    void boot() throws IOException {
        device = new ConsoleDevice(MAX_PORTS, List.of(
                new PortConfig(1, "org.test.one", false, 0, 0, ResizeOrder.COLS_ROWS,
                        new EndpointSpec.FileOut(dir.resolve("one.out")))));
        ram = new GuestRam(32L << 20, 1);
        GuestRings.startAll(device, ram, RING, rings, kicks, calls);
        for (int i = 0; i < 8; i++) {
            rings[QueueMap.CONTROL_RX].addInBuffer(4096);
        }
        EventFd.signal(kicks[QueueMap.CONTROL_RX].fd());
        byte[] ready = new byte[8];
        ControlMessage.encodeHeader(ready, 0, 0xFFFFFFFF, ControlMessage.DEVICE_READY, 1);
        rings[QueueMap.CONTROL_TX].addOutBuffer(ready);
        ControlMessage.encodeHeader(ready, 0, 1, ControlMessage.PORT_READY, 1);
        rings[QueueMap.CONTROL_TX].addOutBuffer(ready);
        EventFd.signal(kicks[QueueMap.CONTROL_TX].fd());
        Await.until("the control messages taken", DEADLINE, () -> rings[QueueMap.CONTROL_TX].usedIdx() == 2);
    }

    @AfterEach
    void shutdown() {
        if (device != null) {
            device.close();
        }
        for (int q = 0; q < rings.length; q++) {
            rings[q].close();
            kicks[q].closeQuietly();
            calls[q].closeQuietly();
        }
        ram.close();
    }

    private long outputBytes() {
        try {
            Path p = dir.resolve("one.out");
            return Files.exists(p) ? Files.size(p) : 0;
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private void send(int chains, int bytesEach) {
        for (int i = 0; i < chains; i++) {
            rings[tx1].addOutBuffer(new byte[bytesEach]);
        }
        EventFd.signal(kicks[tx1].fd());
    }

    @Test
    void aLoneChainBelowTheBatchComesBack() {
        send(1, 100);
        Await.until("the byte in the file", DEADLINE, () -> outputBytes() == 100);
        Await.until("the lone chain completed (published after the linger)", DEADLINE, () -> rings[tx1].usedIdx() == 1);
    }

    @Test
    void aBurstLongerThanTheBatchComesBackWhole() {
        send(200, 64);
        Await.until("the burst in the file", DEADLINE, () -> outputBytes() == 200 * 64);
        Await.until("all 200 chains completed", DEADLINE, () -> rings[tx1].usedIdx() == 200);
    }

    @Test
    void chainsStillGatheringArePublishedWhenTheRingStops() {
        send(3, 10);
        Await.until("the bytes in the file", DEADLINE, () -> outputBytes() == 30);
        int next = device.stopQueue(tx1);
        assertEquals(3, next, "the ring stops after the three chains");
        assertEquals(3, rings[tx1].usedIdx(), "every taken chain is in the used ring when stopQueue returns");
    }
}
