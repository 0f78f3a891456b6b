package io.vportd.console.api;

import io.vportd.console.control.PortConfig;
import io.vportd.console.device.DataPlane;
import io.vportd.console.device.PortRequestException;
import io.vportd.console.device.PortStatus;
import io.vportd.console.device.RemovalReport;
import io.vportd.vhost.VhostStats;
import java.util.List;
import java.util.function.Supplier;

/** {@link PortManager} on a running {@link DataPlane}. */
public final class DataPlanePorts implements PortManager {

    private final DataPlane dataPlane;
    private final VhostStats vhostStats;

    public DataPlanePorts(DataPlane dataPlane) {
        this(dataPlane, null);
    }

    /** With the vhost-user server's counters, which then appear in {@link #metrics()}. */
    public DataPlanePorts(DataPlane dataPlane, VhostStats vhostStats) {
        this.dataPlane = dataPlane;
        this.vhostStats = vhostStats;
    }

    @Override
    public int maxPorts() {
        return dataPlane.maxPorts();
    }

    @Override
    public List<PortStatus> listPorts() {
        return unwrap(dataPlane::ports);
    }

    @Override
    public PortStatus addPort(PortConfig config) {
        return unwrap(() -> dataPlane.addPort(config));
    }

    @Override
    public RemovalReport removePort(int id) {
        return unwrap(() -> dataPlane.removePort(id));
    }

    @Override
    public void resize(int id, int cols, int rows) {
        unwrap(() -> {
            dataPlane.resize(id, cols, rows);
            return null;
        });
    }

    @Override
    public String metrics() {
        String device = Metrics.render(unwrap(dataPlane::ports), unwrap(dataPlane::queues), dataPlane.counters(),
                dataPlane.controlStats());
        return vhostStats == null ? device : device + Metrics.vhost(vhostStats);
    }

    /** The data plane wraps what its thread threw; give the caller the refusal itself. */
    private static <T> T unwrap(Supplier<T> action) {
        try {
            return action.get();
        } catch (IllegalStateException e) {
            if (e.getCause() instanceof PortRequestException refusal) {
                throw new PortRequestException(refusal.reason(), refusal.getMessage(), refusal);
            }
            throw e;
        }
    }
}
