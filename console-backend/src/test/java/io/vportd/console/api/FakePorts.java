package io.vportd.console.api;

import io.vportd.console.control.PortConfig;
import io.vportd.console.device.PortCounters;
import io.vportd.console.device.PortRequestException;
import io.vportd.console.device.PortRequestException.Reason;
import io.vportd.console.device.PortStatus;
import io.vportd.console.device.RemovalReport;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

/** A {@link PortManager} that keeps ports in a map and applies the device's rules. */
final class FakePorts implements PortManager {

    final int maxPorts;
    final TreeMap<Integer, PortConfig> ports = new TreeMap<>();
    final List<String> resizes = new ArrayList<>();
    RuntimeException failNext;
    /** Port 3 reports held guest data for this many more listings. */
    int holdingListings;

    FakePorts(int maxPorts) {
        this.maxPorts = maxPorts;
    }

    @Override
    public int maxPorts() {
        return maxPorts;
    }

    @Override
    public List<PortStatus> listPorts() {
        List<PortStatus> out = new ArrayList<>();
        for (PortConfig c : ports.values()) {
            boolean holding = c.id() == 3 && holdingListings > 0;
            out.add(new PortStatus(c.id(), c.name(), c.console(), c.endpoint().toSpec(), false, false, holding,
                    new PortCounters()));
        }
        if (holdingListings > 0) {
            holdingListings--;
        }
        return out;
    }

    private static PortStatus status(PortConfig c) {
        return new PortStatus(c.id(), c.name(), c.console(), c.endpoint().toSpec(), false, false, false, new PortCounters());
    }

    @Override
    public PortStatus addPort(PortConfig c) {
        if (failNext != null) {
            RuntimeException e = failNext;
            failNext = null;
            throw e;
        }
        if (c.id() >= maxPorts) {
            throw new PortRequestException(Reason.ID_OUT_OF_RANGE, "id " + c.id());
        }
        if (ports.containsKey(c.id())) {
            throw new PortRequestException(Reason.ID_TAKEN, "port id " + c.id() + " is already used");
        }
        for (PortConfig o : ports.values()) {
            if (c.name() != null && c.name().equals(o.name())) {
                throw new PortRequestException(Reason.NAME_TAKEN, "port name '" + c.name() + "' is already used");
            }
        }
        ports.put(c.id(), c);
        return status(c);
    }

    @Override
    public RemovalReport removePort(int id) {
        PortConfig c = ports.remove(id);
        if (c == null) {
            throw new PortRequestException(Reason.NO_SUCH_PORT, "there is no port " + id);
        }
        return new RemovalReport(id, c.name(), 10, 0, 0, false, java.util.List.of());
    }

    @Override
    public void resize(int id, int cols, int rows) {
        PortConfig c = ports.get(id);
        if (c == null) {
            throw new PortRequestException(Reason.NO_SUCH_PORT, "there is no port " + id);
        }
        if (!c.console()) {
            throw new PortRequestException(Reason.NOT_CONSOLE, "port " + id + " is not a console port");
        }
        resizes.add(id + ":" + cols + "x" + rows);
    }

    @Override
    public String metrics() {
        return "vportd_ports " + ports.size() + "\n";
    }
}
