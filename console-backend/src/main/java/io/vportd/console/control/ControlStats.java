package io.vportd.console.control;

/**
 * Counters of one {@link ControlMachine}. Written only by the thread that drives the machine;
 * any thread may read them (each field is volatile, so a reader sees recent values; the set of
 * counters is not read atomically).
 */
public final class ControlStats {
    volatile long messagesIn;
    volatile long messagesOut;
    volatile long malformed;
    volatile long badValue;
    volatile long idOutOfRange;
    volatile long unknownEvent;
    volatile long wrongDirection;
    volatile long unknownPort;
    volatile long duplicateReady;
    volatile long duplicateDeviceReady;
    volatile long deviceReadyFailed;
    volatile long portReadyFailed;
    volatile long readyWithoutDeviceReady;
    volatile long openBeforeReady;
    volatile long staleReady;
    volatile long resets;

    /** Guest messages that were accepted and acted on (or deliberately ignored as duplicates). */
    public long messagesIn() { return messagesIn; }
    /** Control messages handed out by pollOutgoing. */
    public long messagesOut() { return messagesOut; }
    /** Guest messages shorter than 8 bytes (or with impossible bounds). */
    public long malformed() { return malformed; }
    /** Guest boolean events (DEVICE_READY, PORT_READY, PORT_OPEN) whose value was neither 0 nor 1. */
    public long badValue() { return badValue; }
    /** Guest messages naming an id at or above max_nr_ports. */
    public long idOutOfRange() { return idOutOfRange; }
    /** Guest messages with an event number above 7. */
    public long unknownEvent() { return unknownEvent; }
    /** Guest messages carrying an event only the device may send. */
    public long wrongDirection() { return wrongDirection; }
    /** Guest messages for an id below max_nr_ports that is not a configured port (or is being removed). */
    public long unknownPort() { return unknownPort; }
    /** PORT_READY 1 for a port that was already ready. */
    public long duplicateReady() { return duplicateReady; }
    /** DEVICE_READY 1 while the device was already ready. */
    public long duplicateDeviceReady() { return duplicateDeviceReady; }
    /** DEVICE_READY 0 from the guest. */
    public long deviceReadyFailed() { return deviceReadyFailed; }
    /** PORT_READY 0 from the guest. */
    public long portReadyFailed() { return portReadyFailed; }
    /** PORT_READY accepted without a preceding DEVICE_READY or PORT_ADD (hibernation restore). */
    public long readyWithoutDeviceReady() { return readyWithoutDeviceReady; }
    /** Guest PORT_OPEN for a port that was not ready. */
    public long openBeforeReady() { return openBeforeReady; }
    /** PORT_READY for a port whose PORT_ADD is still queued (a reply to a removed earlier incarnation). */
    public long staleReady() { return staleReady; }
    /** deviceReset calls. */
    public long resets() { return resets; }

    /** Sum of all rejected guest messages (malformed, bad value, id out of range, unknown event, wrong direction, unknown port). */
    public long rejected() {
        return malformed + badValue + idOutOfRange + unknownEvent + wrongDirection + unknownPort;
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
