package io.vportd.telemetry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** Metric names are checked once each, and a bad one is refused every time. */
class MetricSetTest {

    @Test
    void aBadNameIsRefusedEveryTimeAndAGoodOneIsTakenAgainAndAgain() {
        for (int i = 0; i < 3; i++) {
            MetricSet m = new MetricSet();
            m.counter("vportd_test_checked_total", "a test counter", "n", Integer.toString(i));
            assertEquals(1, m.metrics().size());
            assertThrows(IllegalArgumentException.class, () -> m.counter("vportd-test-bad", "refused"));
            assertThrows(IllegalArgumentException.class, () -> m.gauge("9starts_with_a_digit", "refused", () -> 0));
            assertEquals(1, m.metrics().size(), "a refused metric is not added");
        }
    }
}
