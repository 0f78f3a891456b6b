package io.vportd.console.device;

/**
 * Something that happened to a port, reported to the management API (in the spirit of QMP's
 * VSERPORT_CHANGE, but for every life-cycle step).
 *
 * @param type   one of the constants below
 * @param id     the port id
 * @param name   the port name, or null
 * @param detail extra words (why a port failed, what a removal left undelivered), or null
 */
public record PortEvent(String type, int id, String name, String detail) {

    public static final String PORT_ADDED = "port-added";
    public static final String PORT_READY = "port-ready";
    public static final String PORT_REMOVED = "port-removed";
    public static final String PORT_FAILED = "port-failed";
    public static final String GUEST_OPEN = "guest-open";
    public static final String GUEST_CLOSED = "guest-closed";
    public static final String HOST_CONNECTED = "host-connected";
    public static final String HOST_DISCONNECTED = "host-disconnected";
}
