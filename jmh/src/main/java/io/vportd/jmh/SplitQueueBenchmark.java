package io.vportd.jmh;

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
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.util.concurrent.TimeUnit;

/**
 * Device-side cost of the split ring: pop + pushUsed + publishUsed per chain, against a
 * {@link RingDriver} that refills the ring (its add/reclaim cost is included, called out of line
 * as the guest's code would never be inlined into the device's). One operation is
 * one chain; descriptors per second = ops/s x {@code descriptors}.
 *
 * <ul>
 *   <li>{@code oneByOne}: the driver adds one chain, the device pops and publishes it, the driver
 *       reclaims it: a used-index publish and a suppression check per chain (worst case).</li>
 *   <li>{@code batch}: the driver adds {@value #BATCH} chains and checks for a kick once; the device
 *       drains with notifications disabled, publishes once and re-enables, as a ring worker does.</li>
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class SplitQueueBenchmark {

    static final int BATCH = 32;
    static final int RING = 256;

    @Param({"1", "4"})
    public int descriptors;

    @Param({"false", "true"})
    public boolean eventIdx;

    private RingDriver driver;
    private SplitQueue queue;
    private Chain chain;
    private long[] gpas;
    private int[] lens;

    @Setup(Level.Trial)
    public void setUp() {
        driver = new RingDriver(RING, eventIdx);
        queue = driver.newDeviceQueue(Direction.DEVICE_READS);
        chain = queue.newChain();
        gpas = new long[descriptors];
        lens = new int[descriptors];
        for (int i = 0; i < descriptors; i++) {
            gpas[i] = driver.allocate(256).gpa();
            lens[i] = 256;
        }
        queue.enableNotifications();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        chain.close();
        driver.close();
    }

    @Benchmark
    public boolean oneByOne() {
        SplitQueue q = queue;
        Chain c = chain;
        boolean kick = guestAdd(1);
        if (q.pop(c) != SplitQueue.POPPED) {
            throw new IllegalStateException("nothing popped");
        }
        q.pushUsed(c.head(), 0);
        boolean irq = q.publishUsed();
        q.enableNotifications();
        guestReclaim();
        return kick ^ irq;
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public int batch() {
        SplitQueue q = queue;
        Chain c = chain;
        int signals = guestAdd(BATCH) ? 1 : 0;
        int popped = 0;
        do {
            q.disableNotifications();
            while (q.pop(c) == SplitQueue.POPPED) {
                q.pushUsed(c.head(), 0);
                popped++;
            }
            if (q.publishUsed()) {
                signals++;
            }
        } while (q.enableNotifications());
        if (popped != BATCH) {
            throw new IllegalStateException("popped " + popped);
        }
        guestReclaim();
        return signals;
    }

    // The guest runs on another CPU in reality: keep its code out of the device path's
    // compilation unit (it would otherwise eat the device path's inlining budget).

    /** Adds {@code n} chains and says whether the driver would kick. */
    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    private boolean guestAdd(int n) {
        for (int i = 0; i < n; i++) {
            driver.add(gpas, lens, descriptors, 0);
        }
        return driver.kickNeeded();
    }

    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    private void guestReclaim() {
        while (driver.reclaimUsed() >= 0) {
            // free every used chain
        }
    }
}
