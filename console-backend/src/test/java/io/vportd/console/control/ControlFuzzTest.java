package io.vportd.console.control;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vportd.console.endpoint.EndpointSpec;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Feeds arbitrary guest control messages, interleaved with arbitrary host/device inputs, to a
 * {@link ControlMachine}. Nothing may throw, the outgoing set must stay within its bound, and
 * every message the device sends must respect the spec's rules (checked by {@link GuestModel}).
 * Runs over the seed corpus in {@code src/test/resources/.../ControlFuzzTestInputs} during
 * {@code mvn verify}; set {@code JAZZER_FUZZ=1} to fuzz.
 */
class ControlFuzzTest {

    private static final int MAX = 6;

    @FuzzTest(maxDuration = "30s")
    void guestAndHostInputs(FuzzedDataProvider data) {
        ControlMachine m = new ControlMachine(MAX, ControlListener.NONE);
        GuestModel guest = new GuestModel(MAX);
        byte[] out = new byte[ControlMessage.MAX_MESSAGE_SIZE];
        while (data.remainingBytes() > 0) {
            int op = data.consumeInt(0, 11);
            int id = data.consumeInt(-1, MAX);
            switch (op) {
                case 0, 1, 2 -> {
                    // a raw guest buffer: arbitrary bytes, arbitrary (possibly bad) bounds
                    byte[] buf = data.consumeBytes(data.consumeInt(0, 24));
                    int off = data.consumeInt(-2, buf.length + 2);
                    int len = data.consumeInt(-2, buf.length + 2);
                    deliver(m, guest, buf, off, len);
                }
                case 3, 4 -> {
                    // a well-formed header with interesting values
                    byte[] buf = new byte[8];
                    ControlMessage.encodeHeader(buf, 0, id, data.consumeInt(0, 8), data.consumeInt(0, 2));
                    deliver(m, guest, buf, 0, 8);
                }
                case 5 -> {
                    try {
                        String name = data.consumeBoolean() ? null : "p" + data.consumeInt(0, 3);
                        m.addPort(new PortConfig(Math.max(id, 0), name, data.consumeBoolean(),
                                data.consumeInt(0, 3), data.consumeInt(0, 3),
                                data.consumeBoolean() ? ResizeOrder.COLS_ROWS : ResizeOrder.ROWS_COLS,
                                new EndpointSpec.Null()));
                    } catch (IllegalArgumentException expected) {
                        // id out of range or in use, name in use
                    }
                }
                case 6 -> m.removePort(id);
                case 7 -> {
                    if (data.consumeBoolean()) {
                        m.hostConnected(id);
                    } else {
                        m.hostDisconnected(id);
                    }
                }
                case 8 -> m.resize(id, data.consumeInt(-1, 4), data.consumeInt(-1, 4));
                case 9 -> m.setSizeNegotiated(data.consumeBoolean());
                case 10 -> m.deviceReset();
                default -> {
                    for (int k = data.consumeInt(0, 8); k > 0; k--) {
                        int expected = m.peekOutgoingLength();
                        int len = m.pollOutgoing(out);
                        assertTrue(len == expected);
                        if (len == 0) {
                            break;
                        }
                        guest.accept(out, len);
                    }
                }
            }
            assertTrue(m.pendingMessageCount() <= ControlMachine.MAX_PENDING_PER_PORT * MAX);
        }
    }

    private static void deliver(ControlMachine m, GuestModel guest, byte[] buf, int off, int len) {
        boolean wasReady = m.isDeviceReady();
        boolean freshReady = ControlMessage.headerFits(buf, off, len)
                && ControlMessage.getLe16(buf, off + 4) == ControlMessage.DEVICE_READY
                && ControlMessage.getLe16(buf, off + 6) == 1;
        if (freshReady && !wasReady) {
            guest.reset(); // a fresh driver knows no port
        }
        m.onGuestMessage(buf, off, len);
        if (ControlMessage.headerFits(buf, off, len)
                && ControlMessage.getLe16(buf, off + 4) == ControlMessage.PORT_READY) {
            int id = ControlMessage.getLe32(buf, off);
            PortState s = m.portState(id >= 0 && id < MAX ? id : 0);
            if (id >= 0 && id < MAX && (s == PortState.READY || s == PortState.FAILED)) {
                guest.added.set(id); // the guest claims the port and the device believed it
            }
        }
    }
}
