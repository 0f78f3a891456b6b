package io.vportd.console.device;

import io.vportd.console.control.PortConfig;
import io.vportd.console.endpoint.Endpoint;
import io.vportd.console.endpoint.Endpoints;
import io.vportd.telemetry.LogLimiter;
import io.vportd.vhost.MemoryTable;
import io.vportd.vhost.QueueSetup;
import io.vportd.vhost.VhostUserBackend;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.util.List;

/**
 * The multiport virtio-console as a vhost-user backend: feature bits, the 12-byte config space
 * and the queue count here; everything that moves bytes lives in the {@link DataPlane}.
 */
public final class ConsoleDevice implements VhostUserBackend, AutoCloseable {

    private static final System.Logger LOG = System.getLogger("vportd.device");
    /** Lines the guest or the frontend can cause (config writes, feature negotiation). */
    private final LogLimiter guestLog = new LogLimiter(LOG);

    public static final long F_SIZE = 1L << 0;
    public static final long F_MULTIPORT = 1L << 1;
    public static final long F_EMERG_WRITE = 1L << 2;
    public static final long F_RING_INDIRECT_DESC = 1L << 28;
    public static final long F_RING_EVENT_IDX = 1L << 29;
    public static final long F_VERSION_1 = 1L << 32;

    public static final long FEATURES = F_SIZE | F_MULTIPORT | F_EMERG_WRITE | F_RING_INDIRECT_DESC
            | F_RING_EVENT_IDX | F_VERSION_1;

    private final QueueMap map;
    private final ConfigSpace config;
    private final DataPlane dataPlane;

    public ConsoleDevice(int maxPorts, List<PortConfig> ports) throws IOException {
        this(maxPorts, ports, ConsoleDevice::endpointFor);
    }

    /** With the device name and journal socket port logs use. */
    public ConsoleDevice(int maxPorts, List<PortConfig> ports, PortLogContext logContext) throws IOException {
        this(maxPorts, ports, ConsoleDevice::endpointFor, logContext);
    }

    /** With another way to make endpoints (tests hand in PTY-backed ones). */
    ConsoleDevice(int maxPorts, List<PortConfig> ports, java.util.function.Function<PortConfig, Endpoint> endpoints)
            throws IOException {
        this(maxPorts, ports, endpoints, PortLogContext.DEFAULT);
    }

    private ConsoleDevice(int maxPorts, List<PortConfig> ports, java.util.function.Function<PortConfig, Endpoint> endpoints,
                          PortLogContext logContext) throws IOException {
        this(maxPorts, ports, endpoints, logContext, null, null, null);
    }

    /** With another way to make endpoints, on {@code loop} (tests). */
    ConsoleDevice(int maxPorts, List<PortConfig> ports, java.util.function.Function<PortConfig, Endpoint> endpoints,
                  PortLogContext logContext, EventLoop loop) throws IOException {
        this(maxPorts, ports, endpoints, logContext, null, null, loop);
    }

    /**
     * A device whose data plane runs on {@code loop}, shared with other devices (a daemon of many
     * devices); its log lines on the loop are tagged with the log context's device name.
     */
    public ConsoleDevice(int maxPorts, List<PortConfig> ports, PortLogContext logContext, EventLoop loop)
            throws IOException {
        this(maxPorts, ports, ConsoleDevice::endpointFor, logContext, null, null, loop);
    }

    /**
     * The device a previous process handed over: ports, control state and endpoints come from
     * {@code snapshot} (endpoints rebuilt by {@code adopt} around the handed descriptors). The data
     * plane runs but stays frozen until {@link DataPlane#thaw}.
     */
    public ConsoleDevice(DeviceSnapshot snapshot, java.util.function.Function<DeviceSnapshot.Port, Endpoint> adopt,
                         PortLogContext logContext) throws IOException {
        this(snapshot.maxPorts(), snapshot.ports().stream().map(DeviceSnapshot.Port::config).toList(),
                ConsoleDevice::endpointFor, logContext, snapshot, adopt, null);
    }

    /** As the handed-over device above, on {@code loop} (a daemon of several devices took it over). */
    public ConsoleDevice(DeviceSnapshot snapshot, java.util.function.Function<DeviceSnapshot.Port, Endpoint> adopt,
                         PortLogContext logContext, EventLoop loop) throws IOException {
        this(snapshot.maxPorts(), snapshot.ports().stream().map(DeviceSnapshot.Port::config).toList(),
                ConsoleDevice::endpointFor, logContext, snapshot, adopt, loop);
    }

    private ConsoleDevice(int maxPorts, List<PortConfig> ports, java.util.function.Function<PortConfig, Endpoint> endpoints,
                          PortLogContext logContext, DeviceSnapshot snapshot,
                          java.util.function.Function<DeviceSnapshot.Port, Endpoint> adopt, EventLoop loop)
            throws IOException {
        this.map = new QueueMap(maxPorts);
        this.config = new ConfigSpace(maxPorts);
        for (PortConfig p : ports) {
            if (p.id() >= maxPorts) {
                throw new IllegalArgumentException(PortRuntime.labelOf(p) + ": id is not below max ports " + maxPorts);
            }
            if (p.console() && p.sizeKnown()) {
                config.size(p.cols(), p.rows()); // the config space carries the first console's size
                break;
            }
        }
        if (snapshot == null) {
            this.dataPlane = new DataPlane(map, ports, endpoints, logContext);
        } else {
            this.dataPlane = new DataPlane(map, List.of(), endpoints, logContext);
            dataPlane.restore(snapshot, adopt);
        }
        if (loop != null) {
            dataPlane.runOn(loop, logContext.device());
        }
        dataPlane.start();
    }

    /** The endpoint of a handed-over port, rebuilt around its descriptors ({@link Endpoints#adopt}). */
    public static Endpoint adoptEndpoint(DeviceSnapshot.Port p) {
        try {
            return Endpoints.adopt(p.config().endpoint(), PortRuntime.labelOf(p.config()), p.endpoint());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /**
     * The endpoint of a port recovered after a crash: around its stored descriptors, or opened
     * afresh from its spec when the checkpoint kept none ({@link io.vportd.console.endpoint.Handed#reopens}).
     */
    public static Endpoint recoverEndpoint(DeviceSnapshot.Port p) {
        if (p.endpoint().reopens()) {
            p.endpoint().closeRest();
            Endpoint e = endpointFor(p.config());
            try {
                e.open(); // may wait on the disk: recovery runs before the device serves
            } catch (IOException x) {
                e.close();
                throw new java.io.UncheckedIOException(x);
            }
            return e;
        }
        return adoptEndpoint(p);
    }

    static Endpoint endpointFor(PortConfig p) {
        return Endpoints.create(p.endpoint(), PortRuntime.labelOf(p));
    }

    public DataPlane dataPlane() {
        return dataPlane;
    }

    @Override
    public long deviceFeatures() {
        return FEATURES;
    }

    @Override
    public int queueCount() {
        return map.queueCount();
    }

    @Override
    public int configSize() {
        return ConfigSpace.SIZE;
    }

    @Override
    public void getConfig(int offset, byte[] dst) {
        config.read(offset, dst);
    }

    @Override
    public void setConfig(int offset, byte[] src) {
        int ch = ConfigSpace.emergencyCharacter(offset, src);
        // QEMU forwards any guest config write as the whole config; emerg_wr then reads 0 unless
        // the guest really wrote a character, so a NUL is not passed on.
        if (ch != ConfigSpace.NO_CHARACTER && ch != 0) {
            dataPlane.emergencyWrite(ch);
        } else {
            guestLog.log(Level.DEBUG, "ignoring a write to read-only config bytes at offset {0}", offset);
        }
    }

    @Override
    public void setFeatures(long acked) {
        if ((acked & F_MULTIPORT) == 0) {
            guestLog.log(Level.WARNING, "the guest did not accept MULTIPORT: only port 0 can work");
        }
        dataPlane.setFeatures(acked);
    }

    @Override
    public void setMemory(MemoryTable table) {
        dataPlane.setMemory(table);
    }

    @Override
    public void bind(SessionControl control) {
        dataPlane.bindSession(control);
    }

    @Override
    public void startQueue(int index, QueueSetup setup) {
        dataPlane.startQueue(index, setup);
    }

    @Override
    public int stopQueue(int index) {
        return dataPlane.stopQueue(index);
    }

    @Override
    public int[] stopQueues(int[] indexes) {
        return dataPlane.stopQueues(indexes);
    }

    @Override
    public void reset() {
        dataPlane.reset();
    }

    @Override
    public void close() {
        dataPlane.close();
    }
}
