package io.vportd.console.control;

import io.vportd.telemetry.Counter;
import io.vportd.telemetry.MetricSet;

/**
 * Counters of one {@link ControlMachine}. Written only by the thread that drives the machine;
 * any thread may read them ({@link Counter} semantics; the set is not read atomically). All of
 * them are in {@link #metrics()}: guest anomalies as {@code vportd_control_guest_anomalies_total}
 * by {@code kind}, plus the totals the exposition always had.
 */
public final class ControlStats {

    private static final String ANOMALIES = "vportd_control_guest_anomalies_total";
    private static final String ANOMALIES_HELP = "Guest control messages that were odd or hostile, by kind.";

    private final MetricSet metrics = new MetricSet();
    final Counter messagesIn = metrics.counter("vportd_control_messages_in_total", "Control messages from the guest accepted.");
    final Counter messagesOut = metrics.counter("vportd_control_messages_out_total", "Control messages sent to the guest.");
    final Counter malformed = anomaly("malformed");
    final Counter badValue = anomaly("bad_value");
    final Counter idOutOfRange = anomaly("id_out_of_range");
    final Counter unknownEvent = anomaly("unknown_event");
    final Counter wrongDirection = anomaly("wrong_direction");
    final Counter unknownPort = anomaly("unknown_port");
    final Counter duplicateReady = anomaly("duplicate_ready");
    final Counter duplicateDeviceReady = anomaly("duplicate_device_ready");
    final Counter deviceReadyFailed = anomaly("device_ready_failed");
    final Counter portReadyFailed = anomaly("port_ready_failed");
    final Counter readyWithoutDeviceReady = anomaly("ready_without_device_ready");
    final Counter openBeforeReady = anomaly("open_before_ready");
    final Counter staleReady = anomaly("stale_ready");
    final Counter resets = metrics.counter("vportd_control_resets_total", "Device resets seen by the control machine.");

    public ControlStats() {
        metrics.derived("vportd_control_rejected_total", "Control messages from the guest rejected (malformed, hostile).",
                this::rejected);
    }

    private Counter anomaly(String kind) {
        return metrics.counter(ANOMALIES, ANOMALIES_HELP, "kind", kind);
    }

    /** These counters, to register with the metric registry. */
    public MetricSet metrics() {
        return metrics;
    }

    /** Guest messages that were accepted and acted on (or deliberately ignored as duplicates). */
    public long messagesIn() { return messagesIn.get(); }
    /** Control messages handed out by pollOutgoing. */
    public long messagesOut() { return messagesOut.get(); }
    /** Guest messages shorter than 8 bytes (or with impossible bounds). */
    public long malformed() { return malformed.get(); }
    /** Guest boolean events (DEVICE_READY, PORT_READY, PORT_OPEN) whose value was neither 0 nor 1. */
    public long badValue() { return badValue.get(); }
    /** Guest messages naming an id at or above max_nr_ports. */
    public long idOutOfRange() { return idOutOfRange.get(); }
    /** Guest messages with an event number above 7. */
    public long unknownEvent() { return unknownEvent.get(); }
    /** Guest messages carrying an event only the device may send. */
    public long wrongDirection() { return wrongDirection.get(); }
    /** Guest messages for an id below max_nr_ports that is not a configured port (or is being removed). */
    public long unknownPort() { return unknownPort.get(); }
    /** PORT_READY 1 for a port that was already ready. */
    public long duplicateReady() { return duplicateReady.get(); }
    /** DEVICE_READY 1 while the device was already ready. */
    public long duplicateDeviceReady() { return duplicateDeviceReady.get(); }
    /** DEVICE_READY 0 from the guest. */
    public long deviceReadyFailed() { return deviceReadyFailed.get(); }
    /** PORT_READY 0 from the guest. */
    public long portReadyFailed() { return portReadyFailed.get(); }
    /** PORT_READY accepted without a preceding DEVICE_READY or PORT_ADD (hibernation restore). */
    public long readyWithoutDeviceReady() { return readyWithoutDeviceReady.get(); }
    /** Guest PORT_OPEN for a port that was not ready. */
    public long openBeforeReady() { return openBeforeReady.get(); }
    /** PORT_READY for a port whose PORT_ADD is still queued (a reply to a removed earlier incarnation). */
    public long staleReady() { return staleReady.get(); }
    /** deviceReset calls. */
    public long resets() { return resets.get(); }

    /** Sum of all rejected guest messages (malformed, bad value, id out of range, unknown event, wrong direction, unknown port). */
    public long rejected() {
        return malformed() + badValue() + idOutOfRange() + unknownEvent() + wrongDirection() + unknownPort();
    }

    @Override
    public String toString() {
        return "ControlStats{in=" + messagesIn + ", out=" + messagesOut + ", malformed=" + malformed
                + ", badValue=" + badValue + ", idOutOfRange=" + idOutOfRange + ", unknownEvent=" + unknownEvent
                + ", wrongDirection=" + wrongDirection + ", unknownPort=" + unknownPort
                + ", duplicateReady=" + duplicateReady + ", duplicateDeviceReady=" + duplicateDeviceReady
                + ", deviceReadyFailed=" + deviceReadyFailed + ", portReadyFailed=" + portReadyFailed
                + ", readyWithoutDeviceReady=" + readyWithoutDeviceReady + ", openBeforeReady=" + openBeforeReady + ", staleReady=" + staleReady
                + ", resets=" + resets + '}';
    }
}
