package io.vportd.console.device;

import io.vportd.console.control.MachineState;
import io.vportd.console.control.PortConfig;
import io.vportd.console.endpoint.Handed;
import java.util.List;

/**
 * What the data plane holds that a live hand-over carries to the next process, taken while it is
 * frozen (rings stopped, no endpoint read or written): the control machine, every port's runtime
 * state and endpoint descriptors, and ports whose removal the guest has not been told yet.
 *
 * @param maxPorts        the device's max_nr_ports
 * @param control         the control state machine (pending bits are the undelivered messages)
 * @param deviceReadySeen the control queue saw DEVICE_READY (a restarted ring must not re-announce)
 * @param ports           the ports with a runtime, by id
 * @param removing        ports removed on the host side whose PORT_REMOVE has not gone out yet
 * @param frozenAtNanos   {@link System#nanoTime()} when the data plane stopped (same clock in every process)
 */
public record DeviceSnapshot(int maxPorts, MachineState control, boolean deviceReadySeen, List<Port> ports,
                             List<PortConfig> removing, long frozenAtNanos) {

    public DeviceSnapshot {
        ports = List.copyOf(ports);
        removing = List.copyOf(removing);
    }

    /**
     * One port's runtime.
     *
     * @param added          the management API has heard of the port
     * @param carriedHead    head of a transmit chain partly taken when its ring stopped
     * @param carriedAvail   its avail index
     * @param carriedTaken   bytes of it the host already took (0: nothing carried)
     * @param consoleBacklog console output the host had not taken yet
     * @param terminalSize   last terminal size seen (cols << 16 | rows), 0 if none
     * @param endpoint       the endpoint's descriptors and facts
     * @param counters       the port's counters, in {@link PortCounters} index order
     * @param replay         the port's replay ring (the last guest output), empty without one
     */
    public record Port(PortConfig config, boolean added, int carriedHead, int carriedAvail, long carriedTaken,
                       byte[] consoleBacklog, int terminalSize, Handed endpoint, long[] counters, byte[] replay) {
    }
}
