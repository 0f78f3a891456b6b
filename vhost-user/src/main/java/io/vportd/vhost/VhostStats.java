package io.vportd.vhost;

import java.util.concurrent.atomic.AtomicLong;

/** Counters of frontend misbehaviour, shared by the sessions of one server. Thread-safe. */
public final class VhostStats {

    final AtomicLong unknownRequests = new AtomicLong();
    final AtomicLong rejectedMessages = new AtomicLong();
    final AtomicLong unofferedFeatureAcks = new AtomicLong();
    final AtomicLong refusedFds = new AtomicLong();
    final AtomicLong unsealedMemoryRefused = new AtomicLong();
    final AtomicLong unsealedMemoryAllowed = new AtomicLong();
    final AtomicLong idleHandshakes = new AtomicLong();
    final AtomicLong sessionsEndedByDevice = new AtomicLong();

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
