package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vportd.console.control.PortConfig;
import io.vportd.console.control.ResizeOrder;
import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.sys.EventFd;
import io.vportd.sys.Fd;
import io.vportd.testsupport.Await;
import io.vportd.vhost.MemoryTable;
import io.vportd.vhost.QueueSetup;
import io.vportd.vring.testing.GuestRam;
import io.vportd.vring.testing.RingDriver;
import java.io.ByteArrayOutputStream;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A guest that does not accept MULTIPORT (early boot code, other guests) has only port 0, a
 * plain console: no control queue, so no PORT_OPEN ever arrives. Host input must still reach it
 * (issue 11.14); before, the port waited forever for an open that never comes.
 */
@Timeout(60)
class SinglePortConsoleTest {

    @TempDir
    Path dir;

    @Test
    void withoutMultiportPortZeroTakesHostInput() throws Exception {
        Path sock = dir.resolve("console.sock");
        int ring = 64;
        try (GuestRam ram = new GuestRam(8L << 20, 1)) {
            ConsoleDevice device = new ConsoleDevice(1, List.of(
                    new PortConfig(0, null, true, 0, 0, ResizeOrder.COLS_ROWS, new EndpointSpec.UnixSocket(sock))));
            device.setMemory(MemoryTable.unowned(ram.memory()));
            device.setFeatures(ConsoleDevice.FEATURES & ~ConsoleDevice.F_MULTIPORT);
            RingDriver[] rings = {new RingDriver(ram, ring, true), new RingDriver(ram, ring, true)};
            Fd[] kicks = {EventFd.create(0, EventFd.EFD_NONBLOCK), EventFd.create(0, EventFd.EFD_NONBLOCK)};
            Fd[] calls = {EventFd.create(0, EventFd.EFD_NONBLOCK), EventFd.create(0, EventFd.EFD_NONBLOCK)};
            try {
                for (int q = 0; q < 2; q++) { // only the port 0 queues: without MULTIPORT there are no others
                    device.startQueue(q, new QueueSetup(q, ring, rings[q].descSegment(), rings[q].availSegment(),
                            rings[q].usedSegment(), 0, kicks[q].fd(), calls[q].fd(), true, ram.memory()));
                }
                rings[0].addInBuffer(4096); // queue 0: port 0 receive
                EventFd.signal(kicks[0].fd());
                try (SocketChannel host = SocketChannel.open(UnixDomainSocketAddress.of(sock))) {
                    host.write(ByteBuffer.wrap("login: root\n".getBytes(StandardCharsets.US_ASCII)));
                    ByteArrayOutputStream got = new ByteArrayOutputStream();
                    Await.until("host input in the guest's port 0 buffer", Duration.ofSeconds(10), () -> {
                        RingDriver.Used u;
                        while ((u = rings[0].pollUsed()) != null) {
                            got.write(u.data(), 0, u.length());
                        }
                        return got.size() >= 12;
                    });
                    assertEquals("login: root\n", got.toString(StandardCharsets.US_ASCII));
                }
            } finally {
                device.close();
                for (int q = 0; q < 2; q++) {
                    rings[q].close();
                    kicks[q].closeQuietly();
                    calls[q].closeQuietly();
                }
            }
        }
    }
}
