package io.vportd.console.api;

import io.vportd.console.control.PortConfig;
import io.vportd.console.device.PortRequestException;
import io.vportd.console.device.PortStatus;
import io.vportd.console.device.RemovalReport;
import java.util.List;

/**
 * What the management protocol needs from the device. {@link DataPlanePorts} is the real one;
 * tests use a fake. Refusals are {@link PortRequestException}s.
 */
public interface PortManager {

    /** max_nr_ports of the device. */
    int maxPorts();

    List<PortStatus> listPorts();

    PortStatus addPort(PortConfig config);

    RemovalReport removePort(int id);

    void resize(int id, int cols, int rows);

    /** Whether a frontend (QEMU) is connected to the device now. */
    default boolean frontendConnected() {
        return false;
    }

    /** Every counter in the Prometheus text exposition format. */
    String metrics();

    /**
     * The port's replay ring (oldest byte first) and, when {@code follower} is not null, the
     * follower registered for the live output that comes after it, with no gap and no repeat.
     */
    default byte[] readLog(int id, io.vportd.console.portlog.LogFollower follower) {
        throw new PortRequestException(PortRequestException.Reason.INVALID, "this daemon keeps no port logs");
    }
}
