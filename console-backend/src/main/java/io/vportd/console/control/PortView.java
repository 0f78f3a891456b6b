package io.vportd.console.control;

/**
 * One port's whole state as the {@link ControlMachine}, its only owner, keeps it: the life cycle
 * ({@link PortState}: configured, added/announced, ready, failed, removing) and two flags.
 *
 * @param state         where the port is in its life cycle
 * @param guestOpen     the guest has the port open (PORT_OPEN 1)
 * @param hostConnected a host peer is connected to the port's endpoint
 */
public record PortView(PortState state, boolean guestOpen, boolean hostConnected) {
}
