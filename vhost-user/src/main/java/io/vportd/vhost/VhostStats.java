package io.vportd.vhost;

import io.vportd.telemetry.LogLimiter;
import io.vportd.telemetry.MetricSet;
import io.vportd.telemetry.SharedCounter;

/**
 * Counters of the vhost-user sessions of one server (frontend misbehaviour, sessions), and the
 * one log limiter for lines a frontend can cause. Several threads may count, so the counters are
 * {@link SharedCounter}s; all of them live in {@link #metrics()}, which the daemon registers so
 * that each reaches the exposition.
 */
public final class VhostStats {

    private final MetricSet metrics = new MetricSet();

    final SharedCounter unknownRequests = metrics.shared("vportd_vhost_unknown_requests_total",
            "vhost-user requests vportd does not know (skipped, failure-acked when asked).");
    final SharedCounter rejectedMessages = metrics.shared("vportd_vhost_rejected_messages_total",
            "vhost-user messages refused by validation (each ended its session).");
    final SharedCounter unofferedFeatureAcks = metrics.shared("vportd_vhost_unoffered_feature_acks_total",
            "SET_FEATURES messages that acknowledged bits never offered (those bits were dropped).");
    final SharedCounter refusedFds = metrics.shared("vportd_vhost_refused_fds_total",
            "Kick/call/err descriptors refused because they are not eventfds (each ended its session).");
    final SharedCounter unsealedMemoryRefused = metrics.shared("vportd_vhost_unsealed_memory_refused_total",
            "Memory regions refused because their file was not sealed against shrinking.");
    final SharedCounter unsealedMemoryAllowed = metrics.shared("vportd_vhost_unsealed_memory_allowed_total",
            "Unsealed memory regions accepted because --allow-unsealed-memory was given.");
    final SharedCounter idleHandshakes = metrics.shared("vportd_vhost_idle_handshakes_total",
            "Frontends dropped because their first message did not arrive in time.");
    final SharedCounter sessionsEndedByDevice = metrics.shared("vportd_vhost_sessions_ended_by_device_total",
            "Sessions the device asked to end (a fault in guest memory, a broken kick descriptor).");
    final SharedCounter sessionsStarted = metrics.shared("vportd_vhost_sessions_started_total",
            "vhost-user frontends accepted.");
    final SharedCounter sessionsEnded = metrics.shared("vportd_vhost_sessions_ended_total",
            "vhost-user sessions that ended and were cleaned up.");
    final SharedCounter sessionsFailed = metrics.shared("vportd_vhost_sessions_failed_total",
            "vhost-user sessions that ended on a protocol, backend or socket error.");

    /** Lines a frontend can cause, over all sessions (a reconnecting frontend does not reset it). */
    final LogLimiter log = new LogLimiter(System.getLogger(Session.class.getName()));

    /** These counters, to register with the metric registry. */
    public MetricSet metrics() {
        return metrics;
    }

    /** Requests vportd does not know (skipped, failure-acked when asked). */
    public long unknownRequests() {
        return unknownRequests.get();
    }

    /** Messages refused by validation (each ended its session). */
    public long rejectedMessages() {
        return rejectedMessages.get();
    }

    /** SET_FEATURES messages that acknowledged bits never offered (those bits were dropped). */
    public long unofferedFeatureAcks() {
        return unofferedFeatureAcks.get();
    }

    /** Kick/call/err descriptors refused because they are not eventfds (each ended its session). */
    public long refusedFds() {
        return refusedFds.get();
    }

    /** Memory regions refused because their file was not sealed against shrinking. */
    public long unsealedMemoryRefused() {
        return unsealedMemoryRefused.get();
    }

    /** Unsealed memory regions accepted because the server was told to allow them. */
    public long unsealedMemoryAllowed() {
        return unsealedMemoryAllowed.get();
    }

    /** Frontends dropped because their first message did not arrive in time. */
    public long idleHandshakes() {
        return idleHandshakes.get();
    }

    /** Sessions the device asked to end (a fault in guest memory, a broken kick descriptor). */
    public long sessionsEndedByDevice() {
        return sessionsEndedByDevice.get();
    }
}
