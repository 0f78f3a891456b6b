package io.vportd.jmh;

import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.vring.Chain;
import io.vportd.vring.Direction;
import io.vportd.vring.SplitQueue;
import io.vportd.vring.testing.RingDriver;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.CompilerControl;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;

/**
 * Guest transmit data path: pop a chain whose buffer lives in guest memory, writev it straight
 * from guest memory into a pipe (the host endpoint), complete it, and drain the pipe on the same
 * thread with read(2) so it never fills. One operation moves {@code bytes} bytes; bytes per
 * second = ops/s x {@code bytes}. The read that drains the pipe is part of the measured cost.
 * The guest driver's refill/reclaim and the pipe reader are kept out of line
 * ({@code DONT_INLINE}): they are not device code and would otherwise eat the device path's
 * inlining budget (which made the JDK's capture-state check in the native bindings allocate).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class WritevBenchmark {

    /** Buffer size; Linux guests send at most 32 KiB per descriptor. */
    @Param({"4096", "32768"})
    public int bytes;

    private RingDriver driver;
    private SplitQueue queue;
    private Chain chain;
    private Fd[] pipe;
    private Arena arena;
    private long sink;
    private long[] gpas;
    private int[] lens;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        driver = new RingDriver(256, true);
        queue = driver.newDeviceQueue(Direction.DEVICE_READS);
        chain = queue.newChain();
        RingDriver.Buffer b = driver.allocate(bytes, 4096);
        byte[] data = new byte[bytes];
        for (int i = 0; i < bytes; i++) {
            data[i] = (byte) i;
        }
        driver.write(b.gpa(), data);
        gpas = new long[] {b.gpa()};
        lens = new int[] {bytes};
        pipe = Io.pipe();
        arena = Arena.ofConfined();
        MemorySegment s = arena.allocate(65536, 4096);
        sink = s.address();
        queue.enableNotifications();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        pipe[0].close();
        pipe[1].close();
        arena.close();
        chain.close();
        driver.close();
    }

    @Benchmark
    public long writevToPipe() {
        SplitQueue q = queue;
        Chain c = chain;
        guestAdd();
        if (q.pop(c) != SplitQueue.POPPED) {
            throw new IllegalStateException("nothing popped");
        }
        int wfd = pipe[1].fd();
        int rfd = pipe[0].fd();
        long moved = 0;
        while (c.remaining() > 0) {
            long n = Io.writev(wfd, c.iovAddress(), c.iovCount());
            if (n < 0) {
                throw new IllegalStateException("writev: " + n);
            }
            c.advance(n);
            moved += drain(rfd, n);
        }
        q.pushUsed(c.head(), 0);
        q.publishUsed();
        q.enableNotifications();
        guestReclaim();
        return moved;
    }

    // The guest and the pipe's reader run elsewhere in reality: keep their code out of the
    // device path's compilation unit so it does not eat the device path's inlining budget.

    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    private void guestAdd() {
        driver.add(gpas, lens, 1, 0);
    }

    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    private void guestReclaim() {
        driver.reclaimUsed();
    }

    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    private long drain(int rfd, long n) {
        long got = 0;
        while (got < n) {
            long r = Io.read(rfd, sink, 65536);
            if (r <= 0) {
                throw new IllegalStateException("read: " + r);
            }
            got += r;
        }
        return got;
    }
}
