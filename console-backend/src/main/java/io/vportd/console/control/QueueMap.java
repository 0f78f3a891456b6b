package io.vportd.console.control;

/**
 * Virtqueue numbering of a multiport console: port 0 uses queues 0 (receive, device to guest)
 * and 1 (transmit), the control queues are 2 (receive) and 3 (transmit), and port N >= 1 uses
 * 2N+2 and 2N+3. A device with {@code maxPorts} ports has {@code 2 * (maxPorts + 1)} queues.
 * Every function checks its argument and answers -1 for an impossible one.
 */
public final class QueueMap {

    /** Control receive queue (device to guest). */
    public static final int CONTROL_RX = 2;
    /** Control transmit queue (guest to device). */
    public static final int CONTROL_TX = 3;

    private QueueMap() {
    }

    /** Number of queues for {@code maxPorts} ports, or -1 if maxPorts is outside 1..0x8000. */
    public static int queueCount(int maxPorts) {
        return maxPorts < 1 || maxPorts > ControlMachine.MAX_PORTS_LIMIT ? -1 : 2 * (maxPorts + 1);
    }

    /** The receive (device to guest) queue of a port, or -1 if the port is not below maxPorts. */
    public static int rxQueue(int port, int maxPorts) {
        if (port < 0 || port >= maxPorts || maxPorts > ControlMachine.MAX_PORTS_LIMIT) {
            return -1;
        }
        return port == 0 ? 0 : 2 * port + 2;
    }

    /** The transmit (guest to device) queue of a port, or -1 if the port is not below maxPorts. */
    public static int txQueue(int port, int maxPorts) {
        int rx = rxQueue(port, maxPorts);
        return rx < 0 ? -1 : rx + 1;
    }

    /** The port a data queue belongs to; -1 for the control queues and queues out of range. */
    public static int portOf(int queue, int maxPorts) {
        if (queue < 0 || queue >= queueCount(maxPorts)) {
            return -1;
        }
        if (queue < 2) {
            return 0;
        }
        if (queue < 4) {
            return -1;
        }
        return (queue - 2) / 2;
    }

    /** True for a receive (device to guest) queue, data or control. */
    public static boolean isRx(int queue) {
        return queue >= 0 && (queue & 1) == 0;
    }
}
