package io.vportd.console;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.UnixSockets;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The daemon tells a service manager (systemd, Type=notify) READY=1 only once its vhost-user
 * socket listens, and STOPPING=1 when it shuts down: checked against a real vportd process with
 * a datagram socket standing in for $NOTIFY_SOCKET.
 */
@Timeout(60)
class ServiceNotifyTest {

    @TempDir
    Path dir;

    private static String receive(Fd socket, long deadline) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(4096);
            while (System.nanoTime() < deadline) {
                long n = UnixSockets.recvWithFds(socket.fd(), buf, 4096, new int[4]);
                if (n > 0) {
                    return new String(buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
                }
                if (n != -Errno.EAGAIN) {
                    throw new AssertionError("recvmsg: " + n);
                }
                LockSupport.parkNanos(5_000_000L);
            }
            throw new AssertionError("no notification in time");
        }
    }

    @Test
    void readyOnlyOnceTheSocketListensAndStoppingAtShutdown() throws Exception {
        Path notify = dir.resolve("notify");
        Path socket = dir.resolve("vportd.sock");
        try (Fd manager = UnixSockets.bindDatagram(notify.toString())) {
            io.vportd.sys.Io.setNonBlocking(manager.fd(), true);
            String java = ProcessHandle.current().info().command().orElse("java");
            ProcessBuilder pb = new ProcessBuilder(List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                    System.getProperty("java.class.path"), Main.class.getName(), "--socket-path", socket.toString(),
                    "--port", "nr=1,null")).redirectErrorStream(true).redirectOutput(dir.resolve("log").toFile());
            pb.environment().put("NOTIFY_SOCKET", notify.toString());
            Process p = pb.start();
            try {
                long deadline = System.nanoTime() + 30_000_000_000L;
                String ready = receive(manager, deadline);
                assertTrue(Files.exists(socket), "the vhost-user socket exists when READY=1 arrives");
                assertTrue(ready.startsWith("READY=1\n"), ready);
                assertTrue(ready.contains("STATUS=serving " + socket), ready);
                p.destroy(); // SIGTERM, as systemctl stop
                assertEquals("STOPPING=1", receive(manager, deadline));
                assertTrue(p.waitFor(20, TimeUnit.SECONDS));
            } finally {
                p.destroyForcibly();
            }
        }
    }
}
