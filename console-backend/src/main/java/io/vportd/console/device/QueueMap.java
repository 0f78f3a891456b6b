package io.vportd.console.device;

/**
 * The queue layout of a virtio-console with VIRTIO_CONSOLE_F_MULTIPORT, as small checked
 * functions. Queue 0/1 are port 0's receive/transmit, 2/3 the control receive/transmit, and port
 * N >= 1 uses 2N+2 (receive, device to guest) and 2N+3 (transmit, guest to device).
 * "Receive" and "transmit" are named from the guest's side, as the specification does.
 */
public final class QueueMap {

    /** QEMU refuses a device with more than this many virtqueues. */
    public static final int MAX_QUEUES = 1024;
    /** The largest max_nr_ports whose queues still fit in {@link #MAX_QUEUES}. */
    public static final int MAX_PORTS = MAX_QUEUES / 2 - 1;

    public static final int CONTROL_RX = 2;
    public static final int CONTROL_TX = 3;

    /** Returned by {@link #portOf(int)} for the two control queues. */
    public static final int CONTROL = -1;
    /** Returned by the mappings for an index outside the device. */
    public static final int INVALID = -2;

    private final int maxPorts;

    public QueueMap(int maxPorts) {
        if (maxPorts < 1 || maxPorts > MAX_PORTS) {
            throw new IllegalArgumentException("max ports must be 1.." + MAX_PORTS + ", got " + maxPorts);
        }
        this.maxPorts = maxPorts;
    }

    public int maxPorts() {
        return maxPorts;
    }

    /** 2 * (max_nr_ports + 1): one pair per port plus the control pair. */
    public int queueCount() {
        return 2 * (maxPorts + 1);
    }

    /** The guest-receive (device writes) queue of a port, or {@link #INVALID}. */
    public int receiveQueue(int port) {
        if (port < 0 || port >= maxPorts) {
            return INVALID;
        }
        return port == 0 ? 0 : 2 * port + 2;
    }

    /** The guest-transmit (device reads) queue of a port, or {@link #INVALID}. */
    public int transmitQueue(int port) {
        int rx = receiveQueue(port);
        return rx == INVALID ? INVALID : rx + 1;
    }

    /** The port a queue belongs to, {@link #CONTROL} for the control pair, or {@link #INVALID}. */
    public int portOf(int queue) {
        if (queue < 0 || queue >= queueCount()) {
            return INVALID;
        }
        if (queue < 2) {
            return 0;
        }
        if (queue < 4) {
            return CONTROL;
        }
        return (queue - 2) / 2;
    }

    /** True for the queues on which the device writes into guest buffers (even indexes). */
    public static boolean isDeviceWrites(int queue) {
        return (queue & 1) == 0;
    }
}
