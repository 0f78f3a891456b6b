package io.vportd.console.api;

import io.vportd.console.control.PortConfig;
import io.vportd.console.device.DataPlane;
import io.vportd.console.device.PortRequestException;
import io.vportd.console.device.PortStatus;
import io.vportd.console.device.RemovalReport;
import java.util.List;
import java.util.function.Supplier;

/** {@link PortManager} on a running {@link DataPlane}. */
public final class DataPlanePorts implements PortManager {

    private final DataPlane dataPlane;
    private final java.util.function.BooleanSupplier frontendConnected;

    public DataPlanePorts(DataPlane dataPlane) {
        this(dataPlane, () -> false);
    }

    /** With {@code frontendConnected} telling whether QEMU is connected (list-devices). */
    public DataPlanePorts(DataPlane dataPlane, java.util.function.BooleanSupplier frontendConnected) {
        this.dataPlane = dataPlane;
        this.frontendConnected = frontendConnected;
    }

    @Override
    public boolean frontendConnected() {
        return frontendConnected.getAsBoolean();
    }

    /** This device's part of a multi-device exposition, labelled {@code labels}. */
    public Metrics.Source metricsSource(java.util.List<String> labels) {
        return new Metrics.Source(labels, unwrap(dataPlane::ports), dataPlane.metrics());
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
        return Metrics.render(unwrap(dataPlane::ports), dataPlane.metrics());
    }

    @Override
    public byte[] readLog(int id, io.vportd.console.portlog.LogFollower follower) {
        if (id < 0 || id >= dataPlane.maxPorts()) {
            throw new PortRequestException(PortRequestException.Reason.NO_SUCH_PORT, "there is no port " + id);
        }
        return unwrap(() -> dataPlane.followLog(id, follower));
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
