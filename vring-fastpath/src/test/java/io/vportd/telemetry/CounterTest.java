package io.vportd.telemetry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

class CounterTest {

    @Test
    void sharedCounterCountsEveryAddFromManyThreads() throws InterruptedException {
        SharedCounter c = new MetricSet().shared("x_total", "x");
        Thread[] ts = new Thread[4];
        for (int i = 0; i < ts.length; i++) {
            ts[i] = new Thread(() -> {
                for (int k = 0; k < 100_000; k++) {
                    c.incrementAndGet();
                }
            });
            ts[i].start();
        }
        for (Thread t : ts) {
            t.join();
        }
        assertEquals(400_000, c.get());
    }

    @Test
    void registryGroupsByNameWithIdentityLabelsFirstAndForgetsRemovedSets() {
        MetricRegistry r = new MetricRegistry();
        MetricSet a = new MetricSet();
        Counter ca = a.counter("q_total", "q", "reason", "x");
        MetricSet b = new MetricSet();
        Counter cb = b.counter("q_total", "q", "reason", "x");
        b.counter("other_total", "o");
        r.register(a, "queue", "1");
        MetricRegistry.Entry eb = r.register(b, "queue", "2");
        ca.add(5);
        cb.increment();
        List<MetricRegistry.Family> fs = r.families();
        assertEquals(2, fs.size());
        assertEquals("q_total", fs.get(0).name());
        assertEquals(List.of(new MetricRegistry.Sample(List.of("queue", "1", "reason", "x"), 5),
                new MetricRegistry.Sample(List.of("queue", "2", "reason", "x"), 1)), fs.get(0).samples());
        r.unregister(eb);
        assertEquals(1, r.families().size());
    }

    @Test
    void namesAndLabelsAreChecked() {
        MetricSet s = new MetricSet();
        assertThrows(IllegalArgumentException.class, () -> s.counter("Bad-Name", "x"));
        assertThrows(IllegalArgumentException.class, () -> s.counter("ok_total", "x", "odd"));
    }

    @Test
    void counterValuesCarryToTheSameCountersOfAnotherRegistry() {
        MetricRegistry a = new MetricRegistry();
        MetricSet qa = new MetricSet();
        Counter chains = qa.counter("x_chains_total", "chains");
        SharedCounter drops = qa.shared("x_drops_total", "drops", "reason", "full");
        qa.gauge("x_depth", "a gauge is not carried", () -> 99);
        a.register(qa, "queue", "3");
        chains.add(41);
        drops.addAndGet(7);

        MetricRegistry b = new MetricRegistry();
        MetricSet qb = new MetricSet();
        Counter chainsB = qb.counter("x_chains_total", "chains");
        SharedCounter dropsB = qb.shared("x_drops_total", "drops", "reason", "full");
        SharedCounter otherB = qb.shared("x_drops_total", "drops", "reason", "other");
        b.register(qb, "queue", "3");
        MetricSet elsewhere = new MetricSet();
        Counter q4 = elsewhere.counter("x_chains_total", "chains");
        b.register(elsewhere, "queue", "4");
        chainsB.add(1);

        assertEquals(2, b.carry(a.counterValues()));
        assertEquals(42, chainsB.get(), "added to what the new counter already had");
        assertEquals(7, dropsB.get());
        assertEquals(0, otherB.get(), "other labels take nothing");
        assertEquals(0, q4.get(), "other identity labels take nothing");
        assertEquals(false, a.counterValues().containsKey("x_depth"), "gauges are not counters");
    }
}
