package io.vportd.console.handover;

import io.vportd.telemetry.MetricSet;
import io.vportd.telemetry.SharedCounter;

/** Counters of live hand-overs, exported with the daemon's metrics (carried across hand-overs like the rest). */
public final class HandoverStats {

    private final MetricSet metrics = new MetricSet();
    final SharedCounter taken = metrics.shared("vportd_handovers_total",
            "Live hand-overs this daemon (and the processes before it) took over from a previous process.");
    final SharedCounter failed = metrics.shared("vportd_handover_failures_total",
            "Live hand-overs that did not happen (refused, or the new process failed); the running process served on.");
    final SharedCounter badRequests = metrics.shared("vportd_handover_bad_requests_total",
            "Unreadable or unknown requests on the hand-over socket.");

    public MetricSet metrics() {
        return metrics;
    }

    /** This process took over from a previous one. */
    public void tookOver() {
        taken.incrementAndGet();
    }

    public long failures() {
        return failed.get();
    }
}
