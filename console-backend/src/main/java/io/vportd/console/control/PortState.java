package io.vportd.console.control;

/**
 * Lifecycle of one port as seen by the control protocol. Whether the guest has the port open
 * and whether the host endpoint is connected are separate flags of the port, not states.
 */
public enum PortState {
    /** Known to the device, not announced to the guest yet (no DEVICE_READY, or PORT_ADD still queued). */
    CONFIGURED,
    /** PORT_ADD was handed to the guest; waiting for PORT_READY. */
    ADDED,
    /** The guest answered PORT_READY 1: the port exists in the guest. */
    READY,
    /** The guest answered PORT_READY 0: it could not set the port up. */
    FAILED,
    /** removePort was called after PORT_ADD went out; PORT_REMOVE is queued. */
    REMOVING;

    /** True when the guest has been told about the port (PORT_ADD sent, PORT_REMOVE not yet). */
    public boolean announced() {
        return this == ADDED || this == READY || this == FAILED;
    }
}
