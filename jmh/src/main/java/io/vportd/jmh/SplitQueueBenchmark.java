package io.vportd.jmh;

import io.vportd.vring.Chain;
import io.vportd.vring.Direction;
import io.vportd.vring.SplitQueue;
import io.vportd.vring.testing.RingDriver;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
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
 * {@link RingDriver} that refills the ring (its add/reclaim cost is included). One operation is
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
        RingDriver d = driver;
        SplitQueue q = queue;
        Chain c = chain;
        d.add(gpas, lens, descriptors, 0);
        boolean kick = d.kickNeeded();
        if (q.pop(c) != SplitQueue.POPPED) {
            throw new IllegalStateException("nothing popped");
        }
        q.pushUsed(c.head(), 0);
        boolean irq = q.publishUsed();
        q.enableNotifications();
        d.reclaimUsed();
        return kick ^ irq;
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public int batch() {
        RingDriver d = driver;
        SplitQueue q = queue;
        Chain c = chain;
        for (int i = 0; i < BATCH; i++) {
            d.add(gpas, lens, descriptors, 0);
        }
        int signals = d.kickNeeded() ? 1 : 0;
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
        while (d.reclaimUsed() >= 0) {
            signals += 0;
        }
        return signals;
    }
}
