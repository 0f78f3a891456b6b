package io.vportd.vhost;

import java.util.concurrent.atomic.AtomicLong;

/** Counters of frontend misbehaviour, shared by the sessions of one server. Thread-safe. */
public final class VhostStats {

    final AtomicLong unknownRequests = new AtomicLong();
    final AtomicLong rejectedMessages = new AtomicLong();
    final AtomicLong unofferedFeatureAcks = new AtomicLong();

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
}
