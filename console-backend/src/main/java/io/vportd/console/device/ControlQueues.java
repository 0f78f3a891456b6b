package io.vportd.console.device;

import io.vportd.console.control.ControlMachine;
import io.vportd.telemetry.LogLimiter;
import io.vportd.vring.Chain;
import io.vportd.vring.SplitQueue;
import java.lang.System.Logger.Level;

/**
 * The two control virtqueues: guest messages go from the control transmit queue into the
 * {@link ControlMachine}; its outgoing messages go into the control receive queue's buffers.
 * Confined to the data-plane thread.
 */
final class ControlQueues {

    private static final System.Logger LOG = System.getLogger("vportd.device");
    /** Lines the guest (or the frontend) can cause here. */
    private final LogLimiter guestLog = new LogLimiter(LOG);

    private static final int CONTROL_BUFFER = 4096;
    /** Chains of the control transmit queue read in one cycle before ports get their turn. */
    private static final int CYCLE_BUDGET = 128;
    private static final byte[] DEVICE_READY_OK = {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0, 0, 1, 0};

    private final ControlMachine control;
    private final DeviceCounters deviceCounters;
    private final byte[] buffer = new byte[CONTROL_BUFFER];
    private QueueTable queues;
    private DirtySet work;
    private int workBit;

    private SplitQueue tx;
    private SplitQueue rx;
    private Chain txChain;
    private Chain rxChain;
    private boolean rxHeld;
    /** Set when the control receive queue had no buffer last time; cleared by its kick. */
    private boolean rxStalled;
    private boolean deviceReadySeen;

    ControlQueues(ControlMachine control, DeviceCounters deviceCounters) {
        this.control = control;
        this.deviceCounters = deviceCounters;
    }

    /** A control message came from the guest or went to it since {@link #takeChanged} was last called. */
    private boolean changed;

    boolean takeChanged() {
        boolean c = changed;
        changed = false;
        return c;
    }

    void bind(QueueTable queues, DirtySet work, int workBit) {
        this.queues = queues;
        this.work = work;
        this.workBit = workBit;
    }

    /** Outgoing messages and a receive queue that may have room for them. */
    boolean wantsService() {
        return control.hasOutgoing() && rx != null && !rxStalled;
    }

    boolean isDeviceReadySeen() {
        return deviceReadySeen;
    }

    void deviceReadySeen() {
        deviceReadySeen = true;
    }

    void reset() {
        deviceReadySeen = false;
    }

    /** Work on the control queues: the guest kicked one of them or a cycle's budget ran out. */
    void kicked() {
        rxStalled = false;
        serviceTransmit();
    }

    void attach(int index, SplitQueue q, int firstAvail) {
        if (index == QueueMap.CONTROL_TX) {
            tx = q;
            txChain = new Chain(q.size());
            if (firstAvail != 0 && !deviceReadySeen) {
                // A frontend re-attached us to a guest whose driver is long past DEVICE_READY
                // and will never send it again: rebuild the port state as if it had.
                guestLog.log(Level.INFO, "control queue resumes at {0}: the guest driver is already running; re-announcing ports",
                        firstAvail);
                control.onGuestMessage(DEVICE_READY_OK, 0, DEVICE_READY_OK.length);
            }
        } else {
            rx = q;
            rxChain = new Chain(q.size());
            rxHeld = false;
        }
    }

    /** Returns the avail index to resume at: a popped, unused receive buffer is offered again. */
    int detach(int index, int next) {
        Chain released;
        if (index == QueueMap.CONTROL_TX) {
            released = txChain;
            txChain = null;
            tx = null;
        } else {
            if (rxHeld) {
                next = (next - 1) & 0xffff;
                rxHeld = false;
            }
            released = rxChain;
            rxChain = null;
            rx = null;
        }
        if (released != null) {
            released.close();
        }
        return next;
    }

    private void serviceTransmit() {
        SplitQueue q = tx;
        if (q == null) {
            return;
        }
        for (int budget = CYCLE_BUDGET; budget > 0; budget--) {
            int r = PortPump.popOrArm(q, txChain);
            if (r == 0) {
                return;
            }
            queues.completed(QueueMap.CONTROL_TX);
            if (r < 0) {
                continue; // a bad chain: the queue completed it with length 0 and counted it
            }
            int len = (int) Math.min(txChain.totalLength(), buffer.length);
            int got = txChain.copyOut(0, buffer, 0, len);
            // Complete first: the guest spins until the buffer comes back.
            q.pushUsed(txChain.head(), 0);
            control.onGuestMessage(buffer, 0, got);
            changed = true;
        }
        work.mark(workBit);
    }

    /** Hands the control machine's outgoing messages to the guest while it has buffers. */
    void serviceReceive() {
        SplitQueue q = rx;
        if (q == null) {
            return;
        }
        while (control.hasOutgoing()) {
            if (!rxHeld) {
                int r = PortPump.popOrArm(q, rxChain);
                if (r == 0) {
                    rxStalled = true; // the guest's next kick on this queue resumes us
                    return;
                }
                if (r < 0) {
                    queues.completed(QueueMap.CONTROL_RX);
                    continue;
                }
                rxHeld = true;
            }
            int need = control.peekOutgoingLength();
            if (need <= 0) {
                return; // keep the buffer for the next message
            }
            if (rxChain.totalLength() < need) {
                // Too small for the next message: the buffer goes back empty and the message waits
                // for one that fits (bounded: one buffer per message tried, the guest's ring is finite).
                long n = deviceCounters.controlTruncated.increment();
                guestLog.log(Level.WARNING, "guest control buffer of {0} bytes is too small for a {1}-byte message; "
                        + "given back empty, the message waits ({2} so far)", rxChain.totalLength(), need, n);
                q.pushUsed(rxChain.head(), 0);
                rxHeld = false;
                queues.completed(QueueMap.CONTROL_RX);
                continue;
            }
            int len = control.pollOutgoing(buffer);
            if (len <= 0) {
                return;
            }
            int wrote = rxChain.copyIn(buffer, 0, len);
            q.pushUsed(rxChain.head(), wrote);
            rxHeld = false;
            changed = true;
            queues.completed(QueueMap.CONTROL_RX);
        }
    }
}
