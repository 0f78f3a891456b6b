package io.vportd.console.api;

import io.vportd.console.cli.DeviceConfig;
import java.nio.file.Path;
import java.util.List;

/**
 * The devices a daemon serves, as the management protocol sees them: one for a daemon started
 * with {@code --socket-path} ({@link #single}), any number for {@code --config}.
 */
public interface DeviceDirectory {

    /** The id of the one device of a daemon started without --config. */
    String SINGLE_ID = "0";

    /** What list-devices tells about a device. */
    record DeviceInfo(String id, Path socket, int maxPorts, int ports, boolean frontendConnected) {
    }

    /**
     * The device {@code id} names; with {@code id} null, the only device, or a refusal when there
     * are several (or none).
     *
     * @throws ApiException {@link ApiProtocol#NO_SUCH_DEVICE}, or invalid-request when one must be named
     */
    PortManager device(String id);

    List<DeviceInfo> listDevices();

    /** Starts serving a further device. */
    default DeviceInfo addDevice(DeviceConfig config) {
        throw new ApiException(ApiProtocol.INVALID_REQUEST,
                "this daemon serves one device (started with --socket-path); start it with --config FILE to add devices");
    }

    /** Stops serving a device: its frontend's connection ends, its endpoints close. */
    default void removeDevice(String id) {
        throw new ApiException(ApiProtocol.INVALID_REQUEST,
                "this daemon serves one device (started with --socket-path); stop it to remove the device");
    }

    /** Every counter of every device, in the Prometheus text format. */
    String metrics();

    /** The directory of a daemon of one device, its id {@value #SINGLE_ID}. */
    static DeviceDirectory single(PortManager ports, Path socket) {
        return new DeviceDirectory() {
            @Override
            public PortManager device(String id) {
                if (id != null && !id.equals(SINGLE_ID)) {
                    throw new ApiException(ApiProtocol.NO_SUCH_DEVICE,
                            "there is no device '" + id + "': this daemon serves one device, " + SINGLE_ID);
                }
                return ports;
            }

            @Override
            public List<DeviceInfo> listDevices() {
                return List.of(new DeviceInfo(SINGLE_ID, socket, ports.maxPorts(), ports.listPorts().size(),
                        ports.frontendConnected()));
            }

            @Override
            public String metrics() {
                return ports.metrics();
            }
        };
    }
}
