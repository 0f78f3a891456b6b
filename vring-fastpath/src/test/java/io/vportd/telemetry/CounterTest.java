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
}
