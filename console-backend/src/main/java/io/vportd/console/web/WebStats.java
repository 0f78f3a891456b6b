package io.vportd.console.web;

import io.vportd.telemetry.MetricSet;
import io.vportd.telemetry.SharedCounter;
import java.util.concurrent.atomic.AtomicInteger;

/** The web console's counters, exported with the daemon's metrics. */
public final class WebStats {

    private final MetricSet metrics = new MetricSet();
    final SharedCounter connections = metrics.shared("vportd_web_connections_total",
            "Connections accepted by the web console.");
    final SharedCounter connectionsRefused = metrics.shared("vportd_web_connections_refused_total",
            "Connections closed at once because the web console had its maximum open.");
    final SharedCounter slowClientsDropped = metrics.shared("vportd_web_slow_clients_dropped_total",
            "Browsers dropped because they did not take their output (a full outbound buffer).");
    final SharedCounter badRequests = metrics.shared("vportd_web_bad_requests_total",
            "HTTP requests refused as malformed, too large or too slow.");
    final SharedCounter badFrames = metrics.shared("vportd_web_bad_frames_total",
            "WebSocket connections closed for a frame or message that breaks the protocol or a limit.");
    final SharedCounter authFailures = metrics.shared("vportd_web_auth_failures_total",
            "Requests refused for a missing or wrong token or session (401).");
    final SharedCounter originRefused = metrics.shared("vportd_web_origin_refused_total",
            "Requests refused for a foreign Origin or Host (403).");
    final SharedCounter inputRefused = metrics.shared("vportd_web_input_refused_total",
            "Input messages from read-only viewers, refused.");
    final SharedCounter inputDroppedBytes = metrics.shared("vportd_web_input_dropped_bytes_total",
            "Typed bytes the guest did not take in time (its input pipe was full), dropped.");
    final SharedCounter eventsDropped = metrics.shared("vportd_web_events_dropped_total",
            "Port events the web console's queue could not take.");
    final AtomicInteger open = new AtomicInteger();

    public WebStats() {
        metrics.gauge("vportd_web_connections", "Web console connections open now.", open::get);
    }

    public MetricSet metrics() {
        return metrics;
    }

    public long slowClientsDropped() {
        return slowClientsDropped.get();
    }

    public long badFrames() {
        return badFrames.get();
    }
}
