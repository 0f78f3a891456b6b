package io.vportd.console.control;

import java.util.List;

/**
 * Everything a {@link ControlMachine} knows, as values: what a live hand-over carries to the next
 * process so that the guest notices nothing (no message repeated, none lost: the pending bits are
 * the control messages not yet delivered).
 *
 * @param deviceReady    DEVICE_READY 1 was received
 * @param multiport      MULTIPORT was negotiated
 * @param sizeNegotiated F_SIZE was negotiated
 * @param cursor         where round-robin polling of pending messages goes on
 * @param ports          every port the machine holds, by id
 */
public record MachineState(boolean deviceReady, boolean multiport, boolean sizeNegotiated, int cursor,
                           List<PortRecord> ports) {

    public MachineState {
        ports = List.copyOf(ports);
    }

    /**
     * One port's control state (the fields of the machine's port entry).
     *
     * @param reAdd the configuration to add under the same id once PORT_REMOVE has gone out, or null
     */
    public record PortRecord(PortConfig config, PortState state, boolean guestOpen, boolean hostConnected, int cols,
                             int rows, int pending, boolean openSent, int sentCols, int sentRows,
                             boolean announcedBeforeReset, PortConfig reAdd, boolean reAddHostConnected) {
    }
}
